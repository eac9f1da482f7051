"""hardware.macs: the mapping the budget chooses is the fastest within it (against every mapping built and
timed), reads back as itself, and bad budgets are refused in one line."""

import pytest

from lstm_hw.config.budget import ROW_CHOICES, choose_mapping, mapping_macs
from lstm_hw.config.schema import parse_config, toml_mapping
from lstm_hw.emit.files import build_top, metadata
from lstm_hw.errors import ConfigError
from lstm_hw.generators.top import mark_built
from lstm_hw.model.design import build_design

SPARSE = {"model": {"input_size": 5, "hidden_size": 12, "num_layers": 2}, "hardware": {"macs": 64}}
DENSE = {"model": {"input_size": 5, "hidden_size": 7, "num_layers": 1, "output_size": 3},
         "sparsity": {"density": 1.0}, "hardware": {"macs": 40, "interleave": 2}}


def cycles(data):
    design = build_design(parse_config(data))
    top = build_top(design)
    try:
        return metadata(design, top, sources=[])
    finally:
        mark_built(top)


def every_mapping(data, banks_options):
    """(cycles per timestep, MACs, rows, banks) of every mapping within the budget that the checks accept."""
    config = parse_config(data)
    plain = {**data, "hardware": {**data["hardware"], "macs": 0}}
    out = []
    for banks in banks_options:
        for rows in ROW_CHOICES:
            macs = mapping_macs(config.model, rows, banks)
            if macs > data["hardware"]["macs"]:
                break
            try:
                meta = cycles({**plain, "hardware": {**plain["hardware"], "rows": rows},
                               "sparsity": {**plain.get("sparsity", {}), "banks": banks}})
            except ConfigError:
                continue
            out.append((meta["cycles_per_timestep"], macs, rows, banks))
    return sorted(out)


@pytest.mark.parametrize("data, banks_options", [(SPARSE, [4]), (DENSE, range(1, 8))])
def test_the_budget_chooses_the_fastest_mapping(data, banks_options):
    config = parse_config(data)
    best = every_mapping(data, banks_options)[0]
    assert (config.hardware.rows, config.sparsity.banks) == best[2:]
    meta = cycles(data)
    assert meta["cycles_per_timestep"] == best[0] and meta["macs"] == best[1] <= data["hardware"]["macs"]
    mapping = meta["mapping"]
    assert (mapping["rows"], mapping["banks"], mapping["macs"], mapping["cycles_per_timestep"]) == \
        (best[2], best[3], best[1], best[0])
    assert mapping["banks_chosen"] == (len(banks_options) > 1) and mapping["timed"] <= mapping["candidates"]
    assert mapping["reason"].startswith(f"hardware.macs = {data['hardware']['macs']} chose ")


def test_a_resolved_config_reads_back_as_itself():
    config = parse_config(DENSE)
    assert parse_config(toml_mapping(config.to_dict())).to_dict() == config.to_dict()


def test_rows_set_beside_a_budget_must_be_the_chosen_ones():
    chosen = parse_config(SPARSE).hardware.rows
    other = next(r for r in (1, 2, 4, 8) if r != chosen)
    with pytest.raises(ConfigError) as info:
        parse_config({**SPARSE, "hardware": {**SPARSE["hardware"], "rows": other}})
    assert str(info.value) == (f"hardware.rows: is chosen by hardware.macs = 64 ({chosen} here), but the config "
                               f"sets {other}: leave it out, or set macs = 0")


@pytest.mark.parametrize("data, path, message", [
    ({"hardware": {"macs": 4}}, "hardware.macs", "is 4, fewer than the 8 MACs the smallest mapping"),
    ({"hardware": {"macs": -1}}, "hardware.macs", "must be 0 (rows and banks as given) or up to"),
    ({"hardware": {"macs": 64}, "sparsity": {"pattern": "unstructured"}}, "hardware.macs",
     "needs sparsity.pattern = \"bank_balanced\""),
])
def test_bad_budgets_are_refused(data, path, message):
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)


def test_the_search_is_cached():
    config = parse_config(DENSE)
    args = (config.model, config.quant, config.sparsity, config.activation, config.hardware)
    assert choose_mapping(*args) is choose_mapping(*args)
