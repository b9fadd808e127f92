"""``trainer.tf32``: FP32 CUDA kernels unless a config turns TF32 on (the papers trained in FP32)."""
import torch

from reproduce.runner.trainer import set_tf32, trainer_config


def test_tf32_default_off_and_switch():
    assert trainer_config({}).tf32 is False
    assert trainer_config({"trainer": {"tf32": True}}).tf32 is True
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        set_tf32(True)
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        set_tf32(False)
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
