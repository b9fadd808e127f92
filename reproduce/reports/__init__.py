"""What each benchmark's results page says, as data: ``reproduce/reports/<benchmark>.py`` holds
its published values (:class:`reproduce.runner.tables.Published`), labels, tables, figures and
notes (``REPORT``); ``reproduce/<benchmark>.py`` declares the benchmark and imports its report."""
