"""The pytorch-grad-cam family on small PyTorch models, each checked against its definition
computed step by step: more methods, several layers, callable targets, maps at the input size,
aug_smooth, eigen_smooth, and Score-CAM's masked passes in chunks or on a given forward."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from imgexplain import targets as cam_targets  # noqa: E402
from imgexplain.cam import methods  # noqa: E402
from imgexplain import CAM  # noqa: E402


def _seeded(build, seed):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build()


@pytest.fixture(scope="module")
def model():
    return _seeded(lambda: nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2), nn.ReLU(),
        nn.Flatten(), nn.Linear(6 * 6 * 6, 3)), 0).eval()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((3, 3, 16, 16), dtype=np.float32)


def _layer_pass(model, cut, image, target):
    """Activations after ``model[:cut]`` and the gradient of the target logit, (h, w, K)."""
    activations = model[:cut](torch.as_tensor(image[None])).detach().requires_grad_(True)
    score = model[cut:](activations)[0, target]
    gradients = torch.autograd.grad(score, activations)[0]
    return [np.moveaxis(t.detach().numpy()[0], 0, -1) for t in (activations, gradients)], float(score.detach())


def _normalized(raw):
    raw = np.maximum(raw, 0)
    return raw / raw.max() if raw.max() > 0 else raw


def test_xgradcam_and_elementwise_follow_their_definitions(model, images):
    for method in ("xgradcam", "gradcam-elementwise"):
        maps = CAM(model, layer="3", method=method)(images, targets=[0, 1, 2])
        for n, target in enumerate([0, 1, 2]):
            (activations, gradients), _ = _layer_pass(model, 4, images[n], target)
            if method == "xgradcam":
                weights = [(gradients[..., k] * activations[..., k]).sum() / activations[..., k].sum()
                           if activations[..., k].sum() else 0.0 for k in range(6)]
                raw = sum(weights[k] * activations[..., k] for k in range(6))
            else:
                raw = sum(np.maximum(gradients[..., k] * activations[..., k], 0) for k in range(6))
            np.testing.assert_allclose(maps[n], _normalized(raw), atol=1e-5)


def test_ablationcam_weights_are_the_relative_drop_of_the_score(model, images):
    maps = CAM(model, layer="1", method="ablationcam", batch_size=3)(images, targets=[2, 0, 1])
    with torch.no_grad():
        for n, target in enumerate([2, 0, 1]):
            activations = model[:2](torch.as_tensor(images[n:n + 1]))
            score = float(model[2:](activations)[0, target])
            raw = np.zeros(activations.shape[2:])
            for k in range(activations.shape[1]):
                ablated = activations.clone()
                ablated[:, k] = 0
                weight = (score - float(model[2:](ablated)[0, target])) / score
                raw += weight * activations[0, k].numpy()
            np.testing.assert_allclose(maps[n], _normalized(raw), atol=1e-5)


def test_several_layers_are_resized_to_the_largest_and_averaged(model, images):
    both = CAM(model, layer=["1", "3"])
    maps = both(images, targets=0)
    assert both.layer == ["1", "3"] and maps.shape == (3, 14, 14)
    first = CAM(model, layer="1")(images, targets=0)
    second = torch.as_tensor(CAM(model, layer="3")(images, targets=0)[:, None])
    assert np.all(second.amax(dim=(1, 2, 3)).numpy() == 1)
    upsampled = F.interpolate(second, size=(14, 14), mode="bilinear", align_corners=False)[:, 0].numpy()
    expected = np.stack([_normalized(m) for m in (first + methods.normalize_maps(upsampled)) / 2])
    np.testing.assert_allclose(maps, expected, atol=1e-5)


def test_size_input_upsamples_bilinearly_and_the_layer_size_stays_the_default(model, images):
    at_layer = CAM(model, layer="3")(images)
    assert at_layer.shape == (3, 6, 6)
    at_input = CAM(model, layer="3", size="input")(images)
    upsampled = F.interpolate(torch.as_tensor(at_layer[:, None]), size=(16, 16), mode="bilinear",
                              align_corners=False)[:, 0].numpy()
    np.testing.assert_allclose(at_input, methods.normalize_maps(upsampled), atol=1e-5)
    assert CAM(model, layer="3", size=(9, 5))(images).shape == (3, 9, 5)
    for bad, error in (("layer", ValueError), ((0, 3), ValueError), ((4.0, 4.0), TypeError), (7, TypeError)):
        with pytest.raises(error, match="size must be"):
            CAM(model, size=bad)


def test_eigen_smooth_is_the_first_component_of_the_weighted_activations(model, images):
    maps = CAM(model, layer="3")(images, targets=[0, 1, 2], eigen_smooth=True)
    for n, target in enumerate([0, 1, 2]):
        (activations, gradients), _ = _layer_pass(model, 4, images[n], target)
        weighted = activations * gradients.mean(axis=(0, 1))
        matrix = weighted.reshape(-1, 6)
        matrix = matrix - matrix.mean(axis=0)      # centred over positions
        direction = np.linalg.svd(matrix, full_matrices=False)[2][0]
        projection = matrix @ (direction if direction.sum() >= 0 else -direction)
        np.testing.assert_allclose(maps[n], _normalized(projection.reshape(6, 6)), atol=1e-5)
    assert not np.allclose(maps, CAM(model, layer="3")(images, targets=[0, 1, 2]))


def test_aug_smooth_averages_flipped_and_scaled_inputs(model, images):
    cam = CAM(model, layer="3")
    targets = cam.compute(images).targets
    total = np.zeros((3, 6, 6))
    for flip in (False, True):
        for factor in (0.9, 1.0, 1.1):
            augmented = (images[..., ::-1] if flip else images) * factor
            maps = cam(np.ascontiguousarray(augmented), targets=targets)
            total += maps[..., ::-1] if flip else maps
    np.testing.assert_allclose(cam(images, aug_smooth=True), methods.normalize_maps(total), atol=1e-5)


def test_callable_targets(model, images):
    cam = CAM(model, layer="3")
    np.testing.assert_allclose(cam(images, targets=cam_targets.ClassScore(2)), cam(images, targets=2))
    mixed = cam.compute(images, targets=[cam_targets.ClassScore(0), 1, cam_targets.ClassScore(2)])
    np.testing.assert_allclose(mixed.maps, cam(images, targets=[0, 1, 2]), atol=1e-6)
    assert list(mixed.targets) == [0, 1, 2]    # the target objects' categories
    assert list(cam.compute(images, targets=lambda output: output[0]).targets) == [-1, -1, -1]
    probabilities = CAM(nn.Sequential(model, nn.Softmax(dim=1)).eval(), layer="0.3")
    np.testing.assert_allclose(cam(images, targets=cam_targets.ClassProbability(1)),
                               probabilities(images, targets=1), atol=1e-5)
    result = cam.compute(images, targets=cam_targets.RegressionOutput())
    with torch.no_grad():
        np.testing.assert_allclose(result.scores, model(torch.as_tensor(images)).sum(dim=1).numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="one number"):
        cam(images, targets=lambda output: output)
    with pytest.raises(ValueError, match="category"):
        cam_targets.ClassScore(-1)
    with pytest.raises(TypeError, match="category"):
        cam_targets.ClassScore(1.0)


def test_segmentation_region_target_against_the_step_by_step_map(images):
    segmenter = _seeded(lambda: nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(),
                                              nn.Conv2d(5, 2, 3, padding=1)), 4).eval()
    mask = np.zeros((16, 16), dtype=bool)
    mask[2:7, 9:14] = True
    maps = CAM(segmenter, layer="1")(images, targets=cam_targets.SegmentationRegion(1, mask))
    for n in range(3):
        activations = segmenter[:2](torch.as_tensor(images[n:n + 1])).detach().requires_grad_(True)
        score = (segmenter[2:](activations)[0, 1] * torch.as_tensor(mask)).sum()
        gradients = torch.autograd.grad(score, activations)[0]
        weights = gradients.mean(dim=(2, 3))[0]
        raw = (weights[:, None, None] * activations[0]).sum(dim=0).detach().numpy()
        np.testing.assert_allclose(maps[n], _normalized(raw), atol=1e-5)
    with pytest.raises(ValueError, match="class targets"):
        CAM(segmenter, layer="1")(images, targets=1)


def test_scorecam_chunks_and_a_given_forward_give_the_same_maps(model, images, capsys):
    reference = CAM(model, layer="1", method="scorecam")(images)
    tiny = CAM(model, layer="1", method="scorecam", max_chunk_bytes=1)
    np.testing.assert_allclose(tiny(images), reference, atol=1e-6)
    calls = []

    def forward(batch):
        calls.append(batch.shape)
        with torch.no_grad():
            return model(torch.as_tensor(batch)).numpy()

    given = CAM(model, layer="1", method="scorecam", forward=forward, max_chunk_bytes=3 * 4 * 16 * 16 * 4)
    np.testing.assert_allclose(given(images), reference, atol=1e-6)
    assert len(calls) == 3 * 2 and all(shape[0] <= 3 and shape[1:] == (3, 16, 16) for shape in calls)
    CAM(model, layer="1", method="scorecam", verbose=True)(images)
    assert "scorecam" in capsys.readouterr().err
    with pytest.raises(RuntimeError, match="one row per image"):
        CAM(model, layer="1", method="scorecam", forward=lambda batch: np.zeros((1, 3)))(images)
    with pytest.raises(TypeError, match="forward"):
        CAM(model, forward=3)


def test_fullgrad_follows_its_definition(images):
    model = _seeded(lambda: nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.Conv2d(4, 5, 3, stride=2), nn.ReLU(),
        nn.Flatten(), nn.Linear(5 * 6 * 6, 3)), 6)
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
        model[1].bias.uniform_(-0.3, 0.3)
    model.eval()
    cam = CAM(model, method="fullgrad")
    maps = cam(images, targets=[1, 0, 2])
    assert cam.layer == ["0", "1", "3"] and maps.shape == (3, 16, 16)

    def rescaled(term):
        term = term.abs()
        term = term - term.min()
        return term / term.max()

    bn = model[1]
    bn_bias = bn.bias - bn.running_mean * bn.weight / torch.sqrt(bn.running_var + bn.eps)
    for n, target in enumerate([1, 0, 2]):
        x = torch.as_tensor(images[n:n + 1]).requires_grad_(True)
        z1 = model[0](x)
        z2 = bn(z1)
        z3 = model[3](torch.relu(z2))
        score = model[5:](torch.relu(z3))[0, target]
        gx, g1, g2, g3 = torch.autograd.grad(score, [x, z1, z2, z3])
        total = rescaled(gx * x).sum(dim=1)
        for grad, bias in ((g1, model[0].bias), (g2, bn_bias), (g3, model[3].bias)):
            term = rescaled(grad * bias[None, :, None, None]).sum(dim=1, keepdim=True)
            total = total + F.interpolate(term, size=(16, 16), mode="bilinear", align_corners=False)[:, 0]
        expected = total[0].detach().numpy()
        np.testing.assert_allclose(maps[n], expected / expected.max(), atol=1e-5)
    with pytest.raises(ValueError, match="layer=None"):
        CAM(model, layer="0", method="fullgrad")
    with pytest.raises(ValueError, match="eigen_smooth"):
        cam(images, eigen_smooth=True)


def test_scorecam_on_a_large_image_builds_its_masked_images_in_bounded_chunks():
    import tracemalloc

    model = _seeded(lambda: nn.Sequential(nn.Conv2d(3, 8, 8, stride=8), nn.ReLU(), nn.AdaptiveMaxPool2d(1),
                                          nn.Flatten(), nn.Linear(8, 2)), 3).eval()
    image = np.random.default_rng(1).random((1, 3, 1024, 1024), dtype=np.float32)
    cam = CAM(model, method="scorecam", max_chunk_bytes=40 * 2**20)
    tracemalloc.start()
    try:
        maps = cam(image)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert maps.shape == (1, 128, 128)
    # One masked image with its mask is 16 MiB: two per chunk. All 8 at once would be 128 MiB.
    assert peak < 100 * 2**20
