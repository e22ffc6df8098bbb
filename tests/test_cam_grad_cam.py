"""pytorch-grad-cam's API (imgexplain.cam.grad_cam): the classes run the registry's methods on the same
core as CAM; the targets, 1x1 layers, outputs, FinerCAM, RefineCAM, ShapleyCAM's Hessian products and
the image helpers, each against a reference computed another way."""
import numpy as np
import pytest
import torch
from torch import nn

import imgexplain
from imgexplain import CAM, deprocess_image, preprocess_image
from imgexplain.cam import grad_cam
from imgexplain.cam.methods import REGISTRY
from imgexplain.targets import (BinaryClassifierOutputTarget, ClassifierOutputReST, ClassifierOutputSoftmaxTarget,
                                ClassifierOutputTarget, FinerWeightedTarget)


def _model(classes=4):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 5, 3, padding=1), nn.Softplus(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(20, classes)).eval()


@pytest.fixture
def images():
    return torch.rand(2, 3, 10, 12, generator=torch.Generator().manual_seed(1))


def test_every_registry_entry_has_its_class_of_pytorch_grad_cam_s_name_at_the_top_level():
    for entry in REGISTRY.values():
        cls = getattr(imgexplain, entry.class_name)
        assert cls is grad_cam.CLASSES[entry.class_name] and cls.method == entry.name
        assert entry.class_name in imgexplain.__all__
    for name in ("GradCAM", "HiResCAM", "GradCAMPlusPlus", "XGradCAM", "ScoreCAM", "AblationCAM", "EigenCAM",
                 "EigenGradCAM", "LayerCAM", "FullGrad", "GradCAMElementWise", "KPCA_CAM", "FEM", "ShapleyCAM",
                 "FinerCAM", "RandomCAM", "SegEigenCAM", "RefineCAM"):
        assert hasattr(imgexplain, name), name


@pytest.mark.parametrize("name", [entry.class_name for entry in REGISTRY.values() if entry.takes_layer])
def test_each_class_gives_the_maps_of_cam_at_the_input_size(name, images):
    model = _model()
    options = {"seed": 0} if name == "RandomCAM" else {}
    targets = [ClassifierOutputTarget(1), ClassifierOutputTarget(3)]
    with getattr(imgexplain, name)(model=model, target_layers=[model[3]], batch_size=4, **options) as cam:
        maps = cam(input_tensor=images, targets=targets)
    expected = CAM(model, layer="3", method=REGISTRY[cam.method].name, size="input", options=options or None)(
        images, targets=[1, 3])
    assert maps.shape == (2, 10, 12) and maps.dtype == np.float32
    np.testing.assert_allclose(maps, expected, atol=1e-6)
    with torch.no_grad():
        np.testing.assert_allclose(cam.outputs.numpy(), model(images).numpy(), rtol=1e-5)


def test_targets_none_explain_the_top_class_and_cam_result_reports_target_categories(images):
    model = _model()
    with torch.no_grad():
        top = model(images).argmax(dim=1).tolist()
    cam = imgexplain.GradCAM(model, [model[3]])
    np.testing.assert_allclose(cam(images), cam(images, [ClassifierOutputTarget(c) for c in top]))
    result = CAM(model, layer="3").compute(images, targets=[ClassifierOutputSoftmaxTarget(2),
                                                            FinerWeightedTarget(1, [0], 1.0)])
    assert result.targets.tolist() == [2, 1]


def test_a_1x1_feature_map_gives_a_zero_map_with_a_warning(images):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 3)).eval()
    with pytest.warns(UserWarning, match="1x1 feature map"):
        maps = imgexplain.GradCAM(model, [model[2]])(images)
    np.testing.assert_array_equal(maps, np.zeros((2, 10, 12), dtype=np.float32))
    with pytest.warns(UserWarning, match="1x1"):     # averaged with a real layer, it counts as zero
        both = imgexplain.GradCAM(model, [model[1], model[2]])(images)
    np.testing.assert_allclose(both, imgexplain.GradCAM(model, [model[1]])(images), atol=1e-6)


def test_bad_arguments_are_clear_errors(images):
    model = _model()
    with pytest.raises(TypeError, match="target_layers must be a list"):
        imgexplain.GradCAM(model, model[3])
    with pytest.raises(ValueError, match="at least one layer"):
        imgexplain.GradCAM(model, [])
    with pytest.raises(ValueError, match="takes the options"):
        imgexplain.FEM(model, [model[3]], kernel="rbf")
    with pytest.warns(UserWarning, match="ignored by FullGrad"):
        imgexplain.FullGrad(model, [model[3]])
    cam = imgexplain.ScoreCAM(model, [model[3]])
    cam.batch_size = 0
    with pytest.raises(ValueError, match="batch_size"):
        cam(images)


def test_batch_size_can_be_reassigned_and_bounds_the_masked_passes(images):
    model = _model()
    calls = []
    model[0].register_forward_hook(lambda module, args, output: calls.append(output.shape[0]))
    cam = imgexplain.ScoreCAM(model, [model[3]])
    cam.batch_size = 2
    cam(images[:1], [ClassifierOutputTarget(0)])
    assert max(calls[1:]) == 2 and sum(calls[1:]) == 5      # 5 channels masked, 2 at a time


def test_shapleycam_hessian_products_match_torch_autograd_functional(images):
    """With a softmax the score is curved in the activations: H A from torch.autograd.functional.hvp."""
    model = nn.Sequential(_model(), nn.Softmax(dim=1)).eval()
    head = model[0][4:]
    with torch.no_grad():
        activations = model[0][:4](images)

    def score(values):
        return torch.softmax(head(values), dim=1)[:, 2].sum()

    gradients = torch.autograd.functional.vjp(score, activations)[1]
    _, products = torch.autograd.functional.hvp(score, activations, activations)
    assert products.abs().max() > 1e-4           # the curvature is there to be found
    expected = imgexplain.cam.methods.shapleycam(np.moveaxis(activations.numpy(), 1, -1),
                                                 np.moveaxis(gradients.numpy(), 1, -1),
                                                 np.moveaxis(products.numpy(), 1, -1))
    maps = CAM(model, layer="0.3", method="shapleycam").compute(images, targets=2).maps
    np.testing.assert_allclose(maps, expected, atol=1e-5)


def test_finercam_explains_the_weighted_difference_with_the_closest_classes(images):
    model = _model(classes=6)
    with torch.no_grad():
        outputs = model(images).numpy()
    targets = []
    for row in outputs:
        main = int(row.argmax())
        ranked = np.argsort(np.abs(row - row[main]), kind="stable")
        targets.append(FinerWeightedTarget(main, [int(ranked[1]), int(ranked[2])], 0.5))
    expected = imgexplain.GradCAM(model, [model[3]])(images, targets)
    finer = imgexplain.FinerCAM(model, [model[3]])
    np.testing.assert_allclose(finer(images, alpha=0.5, comparison_categories=[1, 2]), expected, atol=1e-6)
    assert not np.allclose(expected, imgexplain.GradCAM(model, [model[3]])(images), atol=1e-3)


def test_refinecam_is_the_min_max_scaled_product_of_the_layers_maps(images):
    model = _model()
    first = imgexplain.GradCAM(model, [model[1]])(images)
    second = imgexplain.GradCAM(model, [model[3]])(images)
    product = first * second
    low = product.min(axis=(1, 2), keepdims=True)
    expected = (product - low) / (product - low).max(axis=(1, 2), keepdims=True)
    refined = imgexplain.RefineCAM(model, [model[1], model[3]], base_method=imgexplain.GradCAM)(images)
    np.testing.assert_allclose(refined, expected, atol=1e-6)


def test_target_classes_compute_pytorch_grad_cam_s_formulas():
    logits = torch.tensor([1.0, 3.0, -0.5])
    assert float(ClassifierOutputTarget(1)(logits)) == 3.0
    np.testing.assert_allclose(float(ClassifierOutputSoftmaxTarget(1)(logits)), torch.softmax(logits, 0)[1].item())
    cross_entropy = torch.nn.functional.cross_entropy(logits[None], torch.tensor([0]))
    np.testing.assert_allclose(float(ClassifierOutputReST(0)(logits)), 1.0 - cross_entropy.item(), rtol=1e-6)
    np.testing.assert_allclose(float(ClassifierOutputReST(0)(logits.numpy())), 1.0 - cross_entropy.item(), rtol=1e-6)
    assert float(BinaryClassifierOutputTarget(0)(torch.tensor([0.25]))[0]) == -0.25
    probabilities = torch.softmax(logits, 0)
    weights = probabilities[[0, 2]]
    finer = (weights[0] * (3.0 - 2 * 1.0) + weights[1] * (3.0 - 2 * -0.5)) / weights.sum()
    np.testing.assert_allclose(float(FinerWeightedTarget(1, [0, 2], 2.0)(logits)), finer.item(), rtol=1e-5)
    with pytest.raises(ValueError, match="comparison_categories"):
        FinerWeightedTarget(1, [], 1.0)


def test_preprocess_and_deprocess_image_follow_their_formulas():
    rng = np.random.default_rng(0)
    picture = rng.random((4, 5, 3)).astype(np.float32)
    kept = picture.copy()
    tensor = preprocess_image(picture, mean=[0.1, 0.2, 0.3], std=[0.5, 0.25, 2.0])
    expected = (picture - [0.1, 0.2, 0.3]) / [0.5, 0.25, 2.0]
    np.testing.assert_allclose(tensor[0].numpy(), expected.transpose(2, 0, 1), atol=1e-6)
    np.testing.assert_array_equal(picture, kept)
    pixels = (picture * 255).astype(np.uint8)
    np.testing.assert_allclose(preprocess_image(pixels).numpy(), preprocess_image(pixels / np.float32(255)).numpy())
    with pytest.raises(ValueError, match="one mean and std per channel"):
        preprocess_image(picture, mean=[0.5])
    values = rng.normal(size=(3, 4))
    standardised = (values - values.mean()) / (values.std() + 1e-5)
    np.testing.assert_array_equal(deprocess_image(values), np.uint8(np.clip(standardised * 0.1 + 0.5, 0, 1) * 255))


def test_guided_backpropagation_passes_back_positive_gradients_through_positive_relus():
    """x -> W1 x + b1 -> ReLU -> W2 -> scores, written out: g = W2[c], g = ReLU(g) * (h > 0), dx = W1^T g."""
    rng = np.random.default_rng(3)
    first, bias, second = rng.normal(size=(6, 8)), rng.normal(size=6), rng.normal(size=(3, 6))
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 6), nn.ReLU(inplace=True), nn.Linear(6, 3, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.as_tensor(first))
        model[1].bias.copy_(torch.as_tensor(bias))
        model[3].weight.copy_(torch.as_tensor(second))
    model = model.double()
    image = rng.normal(size=(1, 2, 2, 2))
    hidden = first @ image.ravel() + bias
    guided = np.maximum(second[1], 0) * (hidden > 0)
    expected = (first.T @ guided).reshape(2, 2, 2).transpose(1, 2, 0)
    gradients = imgexplain.GuidedBackpropReLUModel(model)(torch.as_tensor(image), target_category=1)
    np.testing.assert_allclose(gradients, expected, atol=1e-12)
    top = int(np.argmax(second @ np.maximum(hidden, 0)))
    expected_top = (first.T @ (np.maximum(second[top], 0) * (hidden > 0))).reshape(2, 2, 2).transpose(1, 2, 0)
    np.testing.assert_allclose(imgexplain.GuidedBackpropReLUModel(model)(torch.as_tensor(image)), expected_top,
                               atol=1e-12)
    assert not any(module._forward_hooks for module in model.modules())


def test_deep_feature_factorization_recovers_planted_concepts():
    from imgexplain.cam.factorization import dff

    rng = np.random.default_rng(4)
    where = np.zeros((2, 4, 5, 2))
    where[:, :2, :, 0] = 1.0                        # concept 0 fills the top of each image
    where[:, 2:, :, 1] = rng.random((2, 2, 5)) + 0.5   # concept 1 the bottom
    concepts = rng.random((2, 6)) + 0.1             # two channel vectors
    activations = where @ concepts + 3.0            # shifted: DFF removes each channel's minimum
    kept = activations.copy()
    found, maps = dff(activations, n_components=2, seed=0)
    np.testing.assert_array_equal(activations, kept)
    shifted = activations - activations.min(axis=(0, 1, 2))
    reconstruction = np.einsum("kc,nchw->nhwk", found - activations.min(axis=(0, 1, 2))[:, None], maps)
    assert np.abs(reconstruction - shifted).max() < 0.05 * shifted.max()
    top = maps[:, :, :2].sum(axis=(0, 2, 3))
    assert top.argmax() != maps[:, :, 2:].sum(axis=(0, 2, 3)).argmax()   # one concept per region


def test_deep_feature_factorization_class_gives_input_size_maps_and_concept_scores(images):
    model = _model()
    head = nn.Linear(5, 4)
    concepts, explanations, scores = imgexplain.DeepFeatureFactorization(
        model, model[3], computation_on_concepts=head)(images, n_components=3)
    assert concepts.shape == (5, 3) and len(explanations) == 2 and explanations[0].shape == (3, 10, 12)
    assert all(0 <= maps.min() and maps.max() <= 1 for maps in explanations)
    with torch.no_grad():
        np.testing.assert_allclose(scores, head(torch.as_tensor(np.float32(concepts.T))).numpy(), rtol=1e-6)
