"""Class activation maps of transformers: a small ViT (class and register tokens) and a small
Swin-like model (channels-last stages), built here in PyTorch and Keras, checked against Grad-CAM
computed step by step."""
import os

import numpy as np
import pytest

from cam_textbook import textbook_map

torch = pytest.importorskip("torch")
nn = torch.nn

from imgexplain import CAM  # noqa: E402

DIM, SIDE, PATCH = 8, 4, 4


def _seeded(build, seed):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build()


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = nn.LayerNorm(DIM)
        self.attn = nn.MultiheadAttention(DIM, 2, batch_first=True)
        self.norm2 = nn.LayerNorm(DIM)
        self.mlp = nn.Sequential(nn.Linear(DIM, 2 * DIM), nn.GELU(), nn.Linear(2 * DIM, DIM))

    def after_norm1(self, x, normed):
        x = x + self.attn(normed, normed, normed, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))

    def forward(self, x):
        return self.after_norm1(x, self.norm1(x))


class TinyViT(nn.Module):
    """Patches of 4x4 pixels of a 16x16 image, a class token and ``registers`` register tokens;
    the head reads the class token."""

    def __init__(self, registers=0):
        super().__init__()
        self.embed = nn.Conv2d(3, DIM, PATCH, stride=PATCH)
        self.extra = nn.Parameter(torch.randn(1, 1 + registers, DIM))
        self.pos = nn.Parameter(torch.randn(1, 1 + registers + SIDE * SIDE, DIM) * 0.5)
        self.blocks = nn.Sequential(Block(), Block())
        self.norm = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, 3)

    def tokens(self, x):
        patches = self.embed(x).flatten(2).transpose(1, 2)
        return torch.cat([self.extra.expand(len(x), -1, -1), patches], dim=1) + self.pos

    def head_of(self, x):
        return self.head(self.norm(x)[:, 0])

    def forward(self, x):
        return self.head_of(self.blocks(self.tokens(x)))


class TinySwin(nn.Module):
    """Channels-last stages as in Swin: (N, h, w, C) outputs of LayerNorm and Linear layers."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, DIM, PATCH, stride=PATCH)
        self.norm = nn.LayerNorm(DIM)
        self.mix = nn.Linear(DIM, DIM)
        self.head = nn.Linear(DIM, 3)

    def forward(self, x):
        x = self.norm(self.embed(x).permute(0, 2, 3, 1))
        return self.head(torch.tanh(self.mix(x)).flatten(1, 2).max(dim=1).values)


def vit_reshape_transform(tensor, extra=1):
    """pytorch-grad-cam's ViT recipe: drop the extra tokens, (N, C, h, w)."""
    patches = tensor[:, extra:, :]
    return patches.reshape(len(tensor), SIDE, SIDE, DIM).permute(0, 3, 1, 2)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(3).normal(size=(3, 3, 16, 16)).astype(np.float32)


def _vit_by_hand(model, images, targets, extra):
    maps = []
    for image, target in zip(images, targets):
        x = model.blocks[0](model.tokens(torch.as_tensor(image[None])))
        normed = model.blocks[1].norm1(x).detach().requires_grad_(True)
        score = model.head_of(model.blocks[1].after_norm1(x.detach(), normed))[0, target]
        gradients = torch.autograd.grad(score, normed)[0]
        as_maps = [t.detach().numpy()[0, extra:].reshape(SIDE, SIDE, DIM) for t in (normed, gradients)]
        maps.append(textbook_map("gradcam", *as_maps))
    return np.stack(maps)


@pytest.mark.parametrize("registers", [0, 4])
def test_vit_layer_none_explains_the_last_blocks_tokens(images, registers):
    model = _seeded(lambda: TinyViT(registers), 1).eval()
    cam = CAM(model)
    maps = cam(images, targets=[0, 1, 2])
    # The patch embedding (a 4-D map) is not chosen, nor the last block's output, whose patches
    # reach the head only through tokens it discards.
    assert cam.layer == "blocks.1.norm1" and maps.shape == (3, SIDE, SIDE)
    expected = _vit_by_hand(model, images, [0, 1, 2], 1 + registers)
    assert expected.std() > 0.1
    np.testing.assert_allclose(maps, expected, atol=1e-5)
    by_transform = CAM(model, layer=model.blocks[1].norm1,
                       reshape_transform=lambda t: vit_reshape_transform(t, 1 + registers))
    np.testing.assert_allclose(by_transform(images, targets=[0, 1, 2]), expected, atol=1e-5)


def test_swin_like_channels_last_outputs(images):
    model = _seeded(TinySwin, 2).eval()
    expected = []
    for image in images:
        normed = model.norm(model.embed(torch.as_tensor(image[None])).permute(0, 2, 3, 1))
        normed = normed.detach().requires_grad_(True)
        score = model.head(torch.tanh(model.mix(normed)).flatten(1, 2).max(dim=1).values)[0, 1]
        gradients = torch.autograd.grad(score, normed)[0]
        expected.append(textbook_map("gradcam", normed.detach().numpy()[0], gradients.numpy()[0]))
    expected = np.stack(expected)
    by_transform = CAM(model, layer="norm", reshape_transform=lambda t: t.permute(0, 3, 1, 2))
    np.testing.assert_allclose(by_transform(images, targets=1), expected, atol=1e-5)
    # layer=None: the last 4-D output, the Linear's, read channels last as a Linear writes it.
    automatic = CAM(model)
    last = CAM(model, layer="mix", reshape_transform=lambda t: t.permute(0, 3, 1, 2))
    np.testing.assert_allclose(automatic(images, targets=1), last(images, targets=1), atol=1e-6)
    assert automatic.layer == "mix"
    np.testing.assert_allclose(CAM(model, layer="norm")(images, targets=1), expected, atol=1e-5)


def test_bad_reshape_transforms_and_token_outputs_name_the_fix(images):
    model = _seeded(TinyViT, 1).eval()
    with pytest.raises(ValueError, match="after reshape_transform"):
        CAM(model, layer="blocks.1.norm1", reshape_transform=lambda t: t)(images)
    with pytest.raises(TypeError, match="reshape_transform"):
        CAM(model, reshape_transform="vit")

    class NoPatches(nn.Module):     # tokens whose count is not a square plus a few
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(16 * 16, 8)
            self.head = nn.Linear(8 * 3, 2)

        def forward(self, x):
            return self.head(self.proj(x.flatten(2)).flatten(1))

    with pytest.raises(ValueError, match="reshape_transform"):
        CAM(_seeded(NoPatches, 0).eval())(images)


# --- Keras -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras_vit():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = pytest.importorskip("keras")

    class Tokens(keras.layers.Layer):
        def build(self, shape):
            self.extra = self.add_weight(shape=(1, 1, DIM), initializer=keras.initializers.RandomNormal(seed=5))
            self.pos = self.add_weight(shape=(1, 1 + SIDE * SIDE, DIM),
                                       initializer=keras.initializers.RandomNormal(stddev=0.5, seed=6))

        def call(self, patches):
            extra = keras.ops.repeat(self.extra, keras.ops.shape(patches)[0], axis=0)
            return keras.ops.concatenate([extra, patches], axis=1) + self.pos

    class First(keras.layers.Layer):
        def call(self, x):
            return x[:, 0]

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(DIM, PATCH, strides=PATCH, name="embed")(inputs)
    x = Tokens(name="tokens")(keras.layers.Reshape((SIDE * SIDE, DIM))(x))
    for block in range(2):
        normed = keras.layers.LayerNormalization(name=f"block{block}_norm1")(x)
        attended = keras.layers.MultiHeadAttention(2, DIM // 2, name=f"block{block}_attn")(normed, normed)
        x = keras.layers.Add(name=f"block{block}_add1")([x, attended])
        hidden = keras.layers.Dense(2 * DIM, activation="gelu", name=f"block{block}_fc1")(
            keras.layers.LayerNormalization(name=f"block{block}_norm2")(x))
        x = keras.layers.Add(name=f"block{block}_add2")([x, keras.layers.Dense(DIM, name=f"block{block}_fc2")(hidden)])
    x = First(name="class_token")(keras.layers.LayerNormalization(name="norm")(x))
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x))


def test_keras_vit_layer_none_and_reshape_transform_equal_the_step_by_step_map(keras_vit, images):
    keras = pytest.importorskip("keras")
    tf = pytest.importorskip("tensorflow")
    channels_last = images.transpose(0, 2, 3, 1)
    tapped = keras.Model(keras_vit.inputs[0], [keras_vit.get_layer("block1_norm1").output, keras_vit.output])
    expected = []
    for image, target in zip(channels_last, [2, 0, 1]):
        with tf.GradientTape() as tape:
            tokens, outputs = tapped(image[None])
            score = outputs[0, target]
        gradients = tape.gradient(score, tokens).numpy()[0, 1:].reshape(SIDE, SIDE, DIM)
        expected.append(textbook_map("gradcam", tokens.numpy()[0, 1:].reshape(SIDE, SIDE, DIM), gradients))
    expected = np.stack(expected)
    assert expected.std() > 0.1
    cam = CAM(keras_vit)
    np.testing.assert_allclose(cam(channels_last, targets=[2, 0, 1]), expected, atol=1e-5)
    assert cam.layer == "block1_norm1"

    def transform(tensor):
        return tf.reshape(tensor[:, 1:, :], (-1, SIDE, SIDE, DIM))

    explicit = CAM(keras_vit, layer="block1_norm1", reshape_transform=transform)
    np.testing.assert_allclose(explicit(channels_last, targets=[2, 0, 1]), expected, atol=1e-5)


def test_keras_swin_like_channels_last_stage(images):
    keras = pytest.importorskip("keras")
    tf = pytest.importorskip("tensorflow")
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(DIM, PATCH, strides=PATCH, name="embed")(inputs)
    x = keras.layers.LayerNormalization(name="stage_norm")(x)
    x = keras.layers.Dense(DIM, activation="tanh", name="mix")(x)
    outputs = keras.layers.Dense(3, name="head")(keras.layers.GlobalMaxPooling2D()(x))
    model = keras.Model(inputs, outputs)
    channels_last = images.transpose(0, 2, 3, 1)
    tapped = keras.Model(inputs, [model.get_layer("stage_norm").output, outputs])
    with tf.GradientTape() as tape:
        activations, scores = tapped(channels_last)
        score = tf.reduce_sum(scores[:, 1])
    gradients = tape.gradient(score, activations).numpy()
    expected = np.stack([textbook_map("gradcam", a, g) for a, g in zip(activations.numpy(), gradients)])
    cam = CAM(model, layer="stage_norm")
    np.testing.assert_allclose(cam(channels_last, targets=1), expected, atol=1e-5)
