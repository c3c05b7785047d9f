"""Config files validate against the schema; defaults are the paper's; unknown keys fail."""
from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())


@pytest.mark.parametrize("names", [["config.yaml"], ["generain_paper.yaml"], ["geneformer.yaml"], ["demo_full.yaml"],
                                   ["generated_human_mouse.yaml", "generated_human_mouse_3000.yaml"],
                                   ["generated_human_mouse.yaml", "generated_human_mouse_1000.yaml"],
                                   ["generated_human_mouse.yaml", "generated_human_mouse_programs.yaml"]])
def test_ready_configs_validate(names):
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for name in names:  # --configfile merges each file over config.yaml, section by section
        for section, values in yaml.safe_load((REPO / "config" / name).read_text()).items():
            cfg[section] = {**cfg.get(section, {}), **values} if isinstance(values, dict) else values
    jsonschema.validate(cfg, SCHEMA)


def test_geneformer_preset_is_geneformers_published_shape():
    g = yaml.safe_load((REPO / "config" / "geneformer.yaml").read_text())
    assert g["normalization"]["method"] == "rank_value" and g["models"] == ["bert_pred_genes"]
    assert g["tokens"]["length"] == 2048 and g["train"]["mask_fraction"] == 0.15
    assert {k: g["model"][k] for k in ("n_layer", "n_embd", "n_head", "n_inner", "activation")} == {
        "n_layer": 6, "n_embd": 256, "n_head": 4, "n_inner": 512, "activation": "relu"}
    assert g["train"]["group_by_length"] is True


@pytest.mark.parametrize("name", ["config.yaml", "generain_paper.yaml", "geneformer.yaml",
                                  "generated_human_mouse_3000.yaml", "generated_human_mouse_1000.yaml",
                                  "generated_human_mouse_programs.yaml", "demo_full.yaml"])
def test_every_config_key_is_commented(name):
    """Each key has a comment line above it (keys of a dataset entry share the list's comment)."""
    lines = (REPO / "config" / name).read_text().splitlines()
    for i, line in enumerate(lines):
        key = line.split("#")[0]
        if ":" not in key or line.lstrip().startswith("#"):
            continue
        in_dataset = line.startswith("  - ") or line.startswith("    ")
        above = lines[i - 1].strip() if i else ""
        assert above.startswith("#") or in_dataset, f"{name} line {i + 1} ({line.strip()!r}) has no comment above it"


def test_schema_defaults_are_the_paper_settings():
    p = SCHEMA["properties"]
    assert p["qc"]["properties"]["min_total_counts"]["default"] == 1_000_000
    assert p["normalization"]["properties"]["n_bins"]["default"] == 2000
    assert p["tokens"]["properties"]["length"]["default"] == 2048
    m = {k: v["default"] for k, v in p["model"]["properties"].items()}
    assert m == {"n_layer": 6, "n_head": 4, "n_embd": 200, "n_inner": 800, "dropout": 0.05,
                 "activation": "gelu", "layer_norm_eps": 1e-12}
    t = {k: v["default"] for k, v in p["train"]["properties"].items()}
    assert (t["max_lr"], t["div_factor"], t["pct_start"], t["weight_decay"], t["mask_fraction"]) == (
        1e-4, 5, 0.2, 0.01, 0.15)
    assert t["batch_size"] * t["accumulate_grad_batches"] * 3 == 180  # x 3 GPUs: the paper's samples per update


def test_unknown_key_is_rejected():
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["tokens"]["lenght"] = 100
    with pytest.raises(jsonschema.ValidationError, match="'lenght' was unexpected"):
        jsonschema.validate(cfg, SCHEMA)


def test_settings_classes_have_exactly_the_schema_sections_keys():
    """The typed settings the scripts build are the schema's sections, with the same runtime-only keys."""
    from dataclasses import fields

    from generain.sweep import SweepSettings
    from generain.training.fit import TrainSettings
    from generain.utils import runtime_fields

    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())["properties"]
    for cls, section in ((TrainSettings, "train"), (SweepSettings, "sweep")):
        spec = schema[section]["properties"]
        assert {f.name for f in fields(cls)} == set(spec), section
        assert set(runtime_fields(cls)) == {k for k, v in spec.items() if v.get("runtime")}, section
        assert all(f.default is f.default_factory for f in fields(cls)), f"{cls.__name__} must not hold defaults"


def test_finetune_settings_are_the_schema_section_without_its_tasks():
    """FinetuneSettings keeps defaults for the CLI and library use: the schema's, with the same runtime keys."""
    from dataclasses import fields

    from generain.stages.finetune import FinetuneSettings
    from generain.utils import runtime_fields

    spec = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())["properties"]["finetune"]["properties"]
    spec = {k: v for k, v in spec.items() if k not in ("gene_tasks", "sample_tasks")}
    assert {f.name for f in fields(FinetuneSettings)} == set(spec) | {"seed"}
    assert set(runtime_fields(FinetuneSettings)) == {k for k, v in spec.items() if v.get("runtime")}
    assert {f.name: f.default for f in fields(FinetuneSettings) if f.name != "seed"} == {
        k: v["default"] for k, v in spec.items()}


def test_dataclass_defaults_that_mirror_config_keys_equal_the_schema():
    """QCCriteria and ModelConfig keep the paper's values as defaults for library use: they must be the schema's."""
    from dataclasses import MISSING, fields

    from generain.model import ModelConfig
    from generain.qc import QCCriteria

    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())["properties"]
    for cls, section in ((QCCriteria, "qc"), (ModelConfig, "model")):
        spec = schema[section]["properties"]
        for f in fields(cls):
            if f.name in spec and f.default is not MISSING:
                assert f.default == spec[f.name]["default"], f"{cls.__name__}.{f.name}"
