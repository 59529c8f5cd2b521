import re

import pytest
import torch
from torch import nn

from pipeline.networks import (
    AlexNet,
    AlexNetCaffe,
    NetworkError,
    WeightsMismatch,
    build_network,
    layer_geometry,
    read_state_dict,
    resolve_layers,
)

METHOD_RF = {"conv1": 11, "pool1": 19, "conv2": 51, "pool2": 67, "conv3": 99, "conv4": 131, "conv5": 163, "pool5": 195}


@pytest.mark.parametrize("name", ["alexnet", "alexnet-caffe"])
def test_alexnet_theoretical_receptive_fields_match_method(name):
    net = build_network(name)
    for alias, rf in METHOD_RF.items():
        geometry = layer_geometry(net.model, net.aliases[alias], net.preprocessing.input_size)
        assert geometry.rf == rf, alias


def test_alexnet_pool5_shape_and_torchvision_names():
    net = build_network("alexnet")
    geometry = layer_geometry(net.model, "features.12", 224)
    assert (geometry.channels, geometry.height, geometry.width) == (256, 6, 6)
    caffe = build_network("alexnet-caffe")
    geometry = layer_geometry(caffe.model, caffe.aliases["pool5"], 227)
    assert (geometry.channels, geometry.height, geometry.width) == (256, 6, 6)
    assert caffe.preprocessing.bgr and caffe.preprocessing.input_size == 227


def test_plain_state_dict_loads(tmp_path):
    source = AlexNet(num_classes=10)
    torch.save(source.state_dict(), tmp_path / "plain.pth")
    net = build_network("alexnet", tmp_path / "plain.pth")
    assert torch.equal(net.model.features[0].weight, source.features[0].weight)
    assert net.model.classifier[6].out_features == 10  # class count follows the file


def test_places365_checkpoint_with_module_inside_keys_loads(tmp_path):
    source = AlexNet(num_classes=365)
    state = {k.replace("features.", "features.module."): v for k, v in source.state_dict().items()}
    torch.save({"epoch": 90, "arch": "alexnet", "state_dict": state, "best_prec1": 53.2}, tmp_path / "p.pth.tar")
    net = build_network("alexnet", tmp_path / "p.pth.tar")
    assert torch.equal(net.model.features[3].weight, source.features[3].weight)
    assert net.model.classifier[6].out_features == 365


def test_dataparallel_prefix_is_stripped(tmp_path):
    source = AlexNetCaffe()
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, tmp_path / "dp.pth")
    net = build_network("alexnet-caffe", tmp_path / "dp.pth")
    assert torch.equal(net.model.features[4].weight, source.features[4].weight)


def test_mismatching_weights_name_missing_unexpected_and_shapes(tmp_path):
    state = AlexNet().state_dict()
    del state["features.0.bias"]
    state["features.99.weight"] = torch.zeros(1)
    state["features.3.weight"] = torch.zeros(7, 64, 5, 5)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(WeightsMismatch) as info:
        build_network("alexnet", tmp_path / "bad.pth")
    message = str(info.value)
    assert "Missing keys (1): features.0.bias" in message
    assert "Unexpected keys (1): features.99.weight" in message
    assert "features.3.weight: network has [192, 64, 5, 5], file has [7, 64, 5, 5]" in message


def test_unreadable_weights_file_is_a_clear_error(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(NetworkError, match="Cannot read weights file"):
        build_network("alexnet", tmp_path / "junk.pth")
    with pytest.raises(NetworkError, match="not found"):
        read_state_dict(tmp_path / "missing.pth")


def small_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))


def test_import_path_factory_and_unknown_names():
    net = build_network("tests.pipeline.test_networks:small_net")
    assert net.preprocessing.mean == (0.0, 0.0, 0.0) and net.preprocessing.std == (1.0, 1.0, 1.0)
    assert resolve_layers(net.model, ["2"], net.aliases) == {"2": "2"}
    with pytest.raises(NetworkError, match="Unknown layer\\(s\\): conv9, features.77"):
        resolve_layers(net.model, ["conv9", "features.77"], net.aliases)
    with pytest.raises(NetworkError, match="Unknown network"):
        build_network("resnet9000")
    with pytest.raises(NetworkError, match="Cannot import"):
        build_network("no_such_module:factory")


def places365_checkpoint(model: nn.Module, path, old_dense_names: bool = False) -> None:
    """A checkpoint as Places365 ships it: `{'state_dict': ...}` from DataParallel (`module.` keys),
    DenseNet layers with the pre-0.3 torchvision names (`norm.1` for `norm1`)."""
    state = {}
    for key, value in model.state_dict().items():
        if old_dense_names:
            key = re.sub(r"(denselayer\d+\.(norm|conv))([12])\.", r"\1.\3.", key)
        state[f"module.{key}"] = value
    torch.save({"epoch": 40, "arch": "x", "state_dict": state, "best_prec1": 54.7}, path)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "factory", "classifier"),
    [
        ("resnet18", "resnet18", "fc"),
        ("resnet50", "resnet50", "fc"),
        ("wideresnet18", "wideresnet18", "fc"),
        ("vgg16", "vgg16", "classifier.6"),
        ("densenet161", "densenet161", "classifier"),
    ],
)
def test_places365_checkpoints_load_as_shipped(tmp_path, name, factory, classifier):
    from pipeline import architectures

    source = getattr(architectures, factory)(num_classes=365)
    places = tmp_path / f"{name}_places365.pth.tar"
    places365_checkpoint(source, places, old_dense_names=name.startswith("densenet"))
    if name.startswith("densenet"):
        keys = torch.load(places, weights_only=True)["state_dict"]
        assert "module.features.denseblock1.denselayer1.norm.1.weight" in keys
    net = build_network(name, places)
    assert dict(net.model.named_modules())[classifier].out_features == 365  # class count follows the file
    for key, value in source.state_dict().items():
        assert torch.equal(net.model.state_dict()[key], value), key
    plain = tmp_path / "plain.pth"  # torchvision's own format: a plain state_dict, 1000 classes
    torch.save(getattr(architectures, factory)(num_classes=1000).state_dict(), plain)
    assert dict(build_network(name, plain).model.named_modules())[classifier].out_features == 1000


def test_a_resnet_file_given_to_another_network_names_every_difference(tmp_path):
    from pipeline import architectures

    state = architectures.resnet18(num_classes=365).state_dict()
    state["layer4.1.conv2.weight"] = torch.zeros(512, 512, 1, 1)
    del state["layer1.0.bn1.running_var"]
    state["layer5.0.conv1.weight"] = torch.zeros(1)
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "r.pth.tar")
    with pytest.raises(WeightsMismatch) as info:
        build_network("resnet18", tmp_path / "r.pth.tar")
    message = str(info.value)
    assert "Missing keys (1): layer1.0.bn1.running_var" in message
    assert "Unexpected keys (1): layer5.0.conv1.weight" in message
    assert "layer4.1.conv2.weight: network has [512, 512, 3, 3], file has [512, 512, 1, 1]" in message
    with pytest.raises(WeightsMismatch, match="Missing keys"):
        build_network("resnet50", tmp_path / "r.pth.tar")
