"""The HTML report, its staged writing, and the anchor and superpixel pictures."""
import json
from html.parser import HTMLParser

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure
from skimage.segmentation import mark_boundaries

from imgexplain import render, report
from imgexplain.explanation import Explanation


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources, self.styles = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.sources.append(attrs["src"])
        if "style" in attrs:
            self.styles.append(attrs["style"])


def _section(name="cat.png", path="cat.png"):
    return report.ImageSection(
        name=name,
        pictures=[report.Picture(path, "input"),
                  report.Picture("cat-gradcam.png", "gradcam", "7x7 map", colormap="viridis")],
        predictions=[("285 Egyptian_cat", 0.8), ("281 tabby", 0.1)],
        target="285 Egyptian_cat",
        timings={"gradcam": 0.25},
        anchor={"precision": "0.970", "coverage": "0.310"},
    )


# --- report ----------------------------------------------------------------------------------------------


def test_report_escapes_text_and_quotes_picture_paths():
    page = report.render_report([_section(name="<script>x</script>", path="my cat#1.png")],
                                {"images": "a&b.png"})
    assert "<script>x</script>" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page
    assert "a&amp;b.png" in page
    links = _Links()
    links.feed(page)
    assert links.sources == ["my%20cat%231.png", "cat-gradcam.png"]


def test_report_shows_predictions_anchor_and_timings():
    page = report.render_report([_section()], {"seed": 0})
    for text in ("285 Egyptian_cat", "0.800", "0.970", "0.310", "0.25 s", "seed"):
        assert text in page


def test_heatmap_pictures_get_a_colour_bar_of_their_colormap():
    links = _Links()
    links.feed(report.render_report([_section()], {}))
    (bar,) = [style for style in links.styles if "linear-gradient" in style]
    r, g, b, _ = matplotlib.colormaps["viridis"](0.0)
    assert f"rgb({r * 255:.0f},{g * 255:.0f},{b * 255:.0f}) 0%" in bar
    r, g, b, _ = matplotlib.colormaps["viridis"](1.0)
    assert f"rgb({r * 255:.0f},{g * 255:.0f},{b * 255:.0f}) 100%" in bar


def test_write_report_writes_html_and_summary(tmp_path):
    path = report.write_report(tmp_path, [_section()], {"seed": 0}, title="my title")
    assert path == tmp_path / "report.html"
    assert "<title>my title</title>" in path.read_text()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["arguments"] == {"seed": 0}
    assert summary["images"][0]["predictions"][0] == ["285 Egyptian_cat", 0.8]
    assert report.is_previous_output(tmp_path)


# --- staged output ---------------------------------------------------------------------------------------


def test_staged_output_appears_only_when_complete(tmp_path):
    out = tmp_path / "new" / "out"
    with report.staged_output(out) as staging:
        (staging / "a.png").write_bytes(b"x")
        assert not out.exists()
    assert (out / "a.png").read_bytes() == b"x"
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]


def test_staged_output_leaves_nothing_when_interrupted(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        with report.staged_output(out) as staging:
            (staging / "a.png").write_bytes(b"x")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_staged_output_replaces_a_previous_report_and_keeps_it_on_failure(tmp_path):
    out = tmp_path / "out"
    with report.staged_output(out) as staging:
        report.write_report(staging, [_section()], {"run": 1})
        (staging / "old.png").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with report.staged_output(out) as staging:
            raise RuntimeError("model failed")
    assert (out / "old.png").exists()
    with report.staged_output(out) as staging:
        report.write_report(staging, [_section()], {"run": 2})
    assert not (out / "old.png").exists()
    assert json.loads((out / "summary.json").read_text())["arguments"] == {"run": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_output_folder_of_someone_else_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="--out: .* holds files that imgexplain did not write"):
        report.check_output_folder(tmp_path)
    with pytest.raises(ValueError, match="--out: expected a folder"):
        report.check_output_folder(tmp_path / "notes.txt")
    assert report.check_output_folder(tmp_path / "new") == tmp_path / "new"
    assert report.check_output_folder(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"


def test_output_folder_under_a_file_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="--out: cannot create .*: .*notes.txt' is a file, not a folder"):
        report.check_output_folder(tmp_path / "notes.txt" / "out")


# --- pictures --------------------------------------------------------------------------------------------


def _image_and_segments():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(40, 60, 3), dtype=np.uint8)
    segments = np.zeros((40, 60), dtype=int)
    segments[:, 20:40] = 1
    segments[:, 40:] = 2
    return image, segments


def test_anchor_picture_keeps_the_anchor_and_greys_the_rest():
    image, segments = _image_and_segments()
    picture = render.anchor_picture(image, segments, [1])
    assert picture.dtype == np.uint8 and picture.shape == image.shape
    anchor = segments == 1
    np.testing.assert_array_equal(picture[anchor], image[anchor])
    # Away from the outline the rest is grey (R = G = B) and lighter than the image on average.
    far = (segments == 0) & (np.arange(60) < 15)[np.newaxis, :] | (segments == 2) & (np.arange(60) > 45)
    assert np.all(picture[far] == picture[far][:, :1])
    assert picture[far].mean() > image[far].mean() + 50
    # The outline sits just outside the anchor, two pixels wide, in a colour that is not grey.
    outline = ~anchor & np.any(picture != picture[:, :, :1], axis=2)
    assert set(np.nonzero(outline)[1]) == {18, 19, 40, 41}


def test_anchor_picture_of_a_float_image_in_0_1_matches_its_uint8_picture():
    image, segments = _image_and_segments()
    np.testing.assert_array_equal(render.anchor_picture(image / 255.0, segments, [0, 2]),
                                  render.anchor_picture(image, segments, [0, 2]))


def test_empty_anchor_is_said_on_the_picture_not_shown_black():
    image = np.full((160, 240, 3), 128, dtype=np.uint8)
    picture = render.anchor_picture(image, np.zeros((160, 240), dtype=int), [])
    assert picture.shape == (160, 240, 3)
    banner = picture[:40]
    assert (banner == 40).mean() > 0.5  # the dark band
    assert (banner == 255).any()  # white text on it
    assert np.all(picture[100:] == round(0.35 * 128 + 0.65 * 235))  # below it, the image faded, not black
    assert render.EMPTY_ANCHOR_TEXT == "empty anchor: the prediction holds whatever is perturbed"


def test_anchor_picture_rejects_bad_input():
    image, segments = _image_and_segments()
    with pytest.raises(ValueError, match=r"segments: expected a label image of shape \(40, 60\)"):
        render.anchor_picture(image, segments[:, :10], [0])
    with pytest.raises(ValueError, match=r"features: superpixel ids \[7\]"):
        render.anchor_picture(image, segments, [0, 7])
    with pytest.raises(ValueError, match="image: expected an"):
        render.anchor_picture(image[:, :, :2], segments, [0])


def test_boundaries_picture_is_mark_boundaries_plus_numbers():
    image, segments = _image_and_segments()
    plain = render.boundaries_picture(image, segments, numbers=False)
    expected = np.round(mark_boundaries(image, segments, color=(1, 1, 0), mode="thick") * 255)
    np.testing.assert_array_equal(plain, expected.astype(np.uint8))
    assert np.all(plain[:, [19, 20, 39, 40]] == (255, 255, 0))
    numbered = render.boundaries_picture(image, segments)
    changed = np.any(numbered != plain, axis=2)
    # One number per superpixel, written near its middle.
    for label, columns in enumerate([(0, 20), (20, 40), (40, 60)]):
        assert changed[:, columns[0]:columns[1]].any(), label


def _anchor_explanation(features, precision=0.97, coverage=0.31):
    image, segments = _image_and_segments()
    return Explanation(
        meta={"name": "AnchorImage", "params": {}},
        data={"anchor": np.zeros_like(image), "segments": segments, "precision": precision,
              "coverage": coverage, "raw": {"instance": image, "feature": features, "prediction": np.array([3])}},
    )


def test_plot_anchor_draws_image_anchor_and_superpixels():
    figure = render.plot_anchor(_anchor_explanation([1]))
    assert isinstance(figure, Figure)
    titles = [axis.get_title() for axis in figure.axes]
    assert titles == ["image, predicted class 3", "anchor: precision 0.97, coverage 0.31", "3 superpixels"]
    shown = figure.axes[1].get_images()[0].get_array()
    np.testing.assert_array_equal(shown, render.anchor_picture(*_image_and_segments(), [1]))


def test_plot_anchor_into_given_axes_and_for_an_empty_anchor():
    figure = Figure()
    axis = figure.subplots()
    assert render.plot_anchor(_anchor_explanation([], precision=1.0, coverage=1.0), ax=axis) is figure
    assert axis.get_title().startswith("empty anchor")
    with pytest.raises(ValueError, match="ax: expected None, one Axes or three Axes; got 2"):
        render.plot_anchor(_anchor_explanation([1]), ax=Figure().subplots(1, 2))


def test_anchor_explanations_plot_themselves():
    """AnchorImage's explanation draws itself with plot_anchor, and Jupyter gets that picture."""
    from imgexplain import AnchorImage

    image, segments = _image_and_segments()

    def middle_is_textured(images):
        return (images[:, :, 20:40].std(axis=(1, 2, 3)) > 20).astype(int)

    explainer = AnchorImage(middle_is_textured, image.shape, segmentation_fn=lambda picture: segments, seed=0)
    explanation = explainer.explain(image.astype(np.float32))
    assert list(explanation.data["raw"]["feature"]) == [1]
    figure = explanation.plot()
    assert [axis.get_title() for axis in figure.axes][1].startswith("anchor: precision 1.00")
    np.testing.assert_array_equal(figure.axes[1].get_images()[0].get_array(),
                                  render.anchor_picture(image, segments, [1]))
    assert explanation._repr_png_().startswith(b"\x89PNG")
