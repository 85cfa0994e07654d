#!/usr/bin/env python3
"""Renders charts/oxlb with the real Helm engine (PyPI helm-python-sdk: Helm v4 as a
shared library, no helm binary) for the tests in crates/k8s/tests.

stdin: {"chart": PATH, "values": {...}, "name": RELEASE, "namespace": NS}
stdout: {"lint": {...}, "templates": {"oxlb/templates/x.yaml": TEXT, ...}}
        or {"error": MESSAGE} (exit 0, so the test shows Helm's own message).
"""
import json
import sys

import helm_python as helm


def main() -> None:
    request = json.load(sys.stdin)
    chart = request["chart"]
    try:
        lint = helm.lint(chart)
        rendered = helm.Chart.load(chart).render(
            request.get("values") or {},
            name=request.get("name", "oxlb"),
            namespace=request.get("namespace", "metallb-system"),
        )
    except helm.HelmError as e:  # a template's `fail`, a render or lint error
        json.dump({"error": str(e)}, sys.stdout)
        return
    json.dump({"lint": lint, "templates": rendered}, sys.stdout)


if __name__ == "__main__":
    main()
