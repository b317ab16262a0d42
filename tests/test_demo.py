"""The main job's smoke variant, as a user runs it."""

import json
from html import escape
import subprocess
import sys


def test_quick_demo_trains_attributes_and_reports(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-m", "protoken.cli", "demo", "--quick", "--out", str(out),
                             "--data", str(tmp_path / "data")], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert [r["round"] for r in summary["rounds"]] == [1, 2]
    domains = summary["domains"]
    for r in summary["rounds"]:
        assert sorted(r["participants"]) == sorted(domains)
        assert all(f"heldout_loss/{d}" in r["metrics"] and f"train_loss/{d}" in r["metrics"] for d in domains)
    rows = summary["attribution"]
    assert [row["domain"] for row in rows] == domains
    assert summary["attribution_accuracy"] == sum(row["traced"] == row["domain"] for row in rows) / len(rows)
    for row in rows:
        provenance = row["provenance"]
        assert provenance["coverage"]["answered"] == sorted(domains) and provenance["tokens"]
    html = (out / "attribution.html").read_text()
    assert all(escape(row["prompt"][:20]) in html for row in rows)
    assert "round | " in result.stdout and "attribution accuracy" in result.stdout
    again = subprocess.run([sys.executable, "-m", "protoken.cli", "demo", "--quick", "--out", str(out),
                            "--data", str(tmp_path / "data")], capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "already holds a demo run" in again.stderr
