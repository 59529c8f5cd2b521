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

METHOD_RF = {"conv1": 11, "pool1": 19, "conv2": 51, "pool2": 67, "conv3": 99, "conv4": 131, "conv5": 163,
             "pool5": 195}


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
