"""The results table's schema: every column described once, its version in OUT's manifest and the run's
fingerprint, and an OUT of an older schema refused with one line before any model call."""
import json

import numpy as np
import pytest
from PIL import Image

from imgexplain import cli, models, output_folder, schema
from imgexplain.pipeline import explain_dataset
from imgexplain.results import MANIFEST_NAME, TABLE_NAME, OutputFolder, fingerprint


def test_every_column_has_one_description_and_the_command_s_rows_use_only_described_columns():
    described = [column.name for column in schema.RUN_COLUMNS + schema.IMAGE_COLUMNS + schema.PICTURE_COLUMNS]
    assert len(described) == len(set(described))
    assert all(column.meaning for column in schema.RUN_COLUMNS + schema.IMAGE_COLUMNS + schema.PICTURE_COLUMNS)
    table = schema.table_schema(schema.row_schema(["anchor", "gradcam", "scorecam"]))
    made = {"gradcam", "scorecam", "seconds_anchor", "seconds_gradcam", "seconds_scorecam"}
    assert set(table.names) == set(described) | made
    assert table.field("gradcam").type == schema.map_column("x").field().type


def test_a_new_out_records_the_schema_version_and_the_fingerprint_depends_on_it(tmp_path, monkeypatch):
    folder = OutputFolder(tmp_path / "out", (), {"method": "anchor"})
    folder.claim()
    folder.close()
    manifest = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())
    assert manifest[schema.VERSION_KEY] == schema.SCHEMA_VERSION
    monkeypatch.setattr(output_folder, "SCHEMA_VERSION", schema.SCHEMA_VERSION + 1)
    assert OutputFolder(tmp_path / "other", (), {"method": "anchor"}).fingerprint != manifest["fingerprint"]


def _old_out(out, arguments, version=None):
    """An OUT as an imgexplain of another schema left it: its manifest, and a part without 'anchor_found'."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (out / TABLE_NAME).mkdir(parents=True)
    manifest = {"generator": "imgexplain", "version": "0.9.0", "fingerprint": fingerprint(arguments),
                "arguments": arguments, "entries": [MANIFEST_NAME, TABLE_NAME]}
    if version is not None:
        manifest[schema.VERSION_KEY] = version
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    columns = schema.table_schema(schema.row_schema(["anchor"]))
    old = pa.schema([field for field in columns if field.name != "anchor_found"])
    row = {"image": "a.png", "content_hash": "0", "index": 0, "status": "ok", "anchor": [1], "precision": 1.0}
    part = out / TABLE_NAME / "part-00000000000000000001-abcdef01.parquet"
    pq.write_table(pa.Table.from_pylist([row], schema=old), part)
    return sorted((path, path.stat().st_mtime_ns) for path in out.rglob("*"))


@pytest.mark.parametrize("version", [None, 0, "1", True])
def test_an_out_of_another_schema_is_one_line_before_any_model_call(tmp_path, capsys, monkeypatch, version):
    def must_not_load(*args, **kwargs):
        raise AssertionError("a model was loaded for an OUT of another schema")

    monkeypatch.setattr(models, "load_builtin", must_not_load)
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    before = _old_out(tmp_path / "out", {"method": "anchor"}, version)
    status = cli.main(["explain", str(image), "--method", "anchor", "--out", str(tmp_path / "out")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(lines) == 1, lines
    assert "written by imgexplain 0.9.0" in lines[0] and f"schema version {schema.SCHEMA_VERSION}" in lines[0]
    assert "explain into a new folder" in lines[0]
    assert sorted((path, path.stat().st_mtime_ns) for path in (tmp_path / "out").rglob("*")) == before


def test_the_library_refuses_an_out_of_another_schema_before_making_the_explainer(tmp_path):
    import pyarrow as pa

    def must_not_make():
        raise AssertionError("the explainer was made for an OUT of another schema")

    _old_out(tmp_path / "out", {"method": "mean"})
    with pytest.raises(schema.SchemaVersionError, match="before schema versions were recorded"):
        explain_dataset([np.zeros((2, 2))], must_not_make, out=tmp_path / "out",
                        schema=pa.schema([("mean", pa.float64())]), arguments={"method": "mean"}, progress=False)


def test_the_command_s_rows_hold_exactly_the_described_columns():
    pytest.importorskip("torch")
    from tiny_classifier import SIZE, tiny_classifier

    from imgexplain.explainers import ImageExplainer

    methods = ["anchor", "gradcam"]
    image = np.repeat(np.linspace(0, 255, SIZE, dtype=np.float32)[None, :, None], SIZE, axis=0).repeat(3, axis=2)
    row = ImageExplainer(tiny_classifier, methods, pictures="none").explain(image)
    assert set(row) - {"files"} == set(schema.row_schema(methods).names)  # none dropped unseen by the table
