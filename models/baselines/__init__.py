"""Conventional (and group-CNN) baselines of the reproduced tables, in plain ``torch.nn`` /
scikit-learn, named for what they are:

* :mod:`.cnn3d` — ``TetrisCNN`` (Weiler et al. 2018 §5.1) and the CATH ``ResNet34`` (§5.4);
* :mod:`.cnn2d` — ``Z2CNN`` (Cohen & Welling 2016, rotated MNIST) and the cosmology
  ``FlatPatchConvNet`` (Perraudin et al. 2019, "2D ConvNet");
* :mod:`.p4cnn` — ``P4CNN``, the p4 group CNN (Cohen & Welling 2016), with its layers;
* :mod:`.per_site` — ``PerSiteLogistic``: logistic regression on each site's channels alone (the
  context-free baseline of the climate segmentation table);
* :mod:`.mass` — ``MassOnlyClassifier``: 1-nearest neighbour on total mass (the Tetris mass cue);
* :mod:`.svm` — the linear-SVM baseline of Perraudin et al. 2019 (PSD and histogram features,
  ``LinearSVMBaseline``: fit and score one grid point).

The equivariant models they are compared with are in :mod:`models.steerable`,
:mod:`models.harmonic` and :mod:`models.deepsphere`.
"""
from models.baselines.cnn2d import FlatPatchConvNet, Z2CNN
from models.baselines.cnn3d import ResNet34, TetrisCNN
from models.baselines.mass import MassOnlyClassifier
from models.baselines.per_site import PerSiteLogistic
from models.baselines.p4cnn import P4CNN, P4ConvP4, P4ConvZ2, rotate_p4
from models.baselines.svm import LinearSVMBaseline, fit_linear_svm, histogram_features, psd_features

__all__ = [
    "FlatPatchConvNet", "MassOnlyClassifier", "Z2CNN", "ResNet34", "TetrisCNN", "P4CNN", "P4ConvP4", "P4ConvZ2",
    "rotate_p4", "PerSiteLogistic", "LinearSVMBaseline", "fit_linear_svm", "histogram_features", "psd_features",
]
