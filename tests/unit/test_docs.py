"""The docs tell the truth: the complete example in docs/spec.md passes `check`, and the
generated reference matches the registries."""

from __future__ import annotations

import re
from pathlib import Path

from neurodeploy import check
from neurodeploy.app.docgen import BEGIN, END, registry_markdown


def test_complete_example_in_spec_doc_is_valid(tmp_path):
    text = Path("docs/spec.md").read_text()
    m = re.search(r"## A complete example.*?```yaml\n(.*?)```", text, re.S)
    assert m, "docs/spec.md lost its complete example"
    f = tmp_path / "tour.yaml"
    f.write_text(m.group(1))
    net, diags = check(f)
    assert net is not None and not diags, [d.render() for d in diags]
    kinds = {s.kind for s in net.stimuli}
    assert kinds == {"poisson", "spike_times", "current", "array"}
    assert {p.connectivity.kind for p in net.projections} == {"dense", "random", "sparse"}
    assert any(p.plasticity for p in net.projections) and net.blocks


def test_generated_reference_is_current():
    text = Path("docs/spec.md").read_text()
    current = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert current.strip() == registry_markdown().strip(), (
        "docs/spec.md reference is stale: run `python -m neurodeploy.app.docgen`")


def test_readme_typos_example_reports_what_the_readme_shows(capsys):
    from neurodeploy.app import cli

    rc = cli.main(["check", "examples/typos.yaml"])
    err = capsys.readouterr().err
    assert rc == 1
    readme = Path("README.md").read_text()
    shown = [line for line in err.splitlines()[:8]]
    for line in shown:
        assert line in readme, f"README's typos output is stale: {line!r}"
    assert [c for c in ("ND302", "ND400", "ND303", "ND501") if c in err] == ["ND302", "ND400", "ND303", "ND501"]
