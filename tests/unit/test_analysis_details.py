"""The line that tells saved analyses of one text apart: method, explained score, heads removed."""

from __future__ import annotations

from dataclasses import replace

from explain.viz.text import analyses_details, analysis_details
from tests.unit.test_report import make_analysis


def test_details_name_the_method_the_target_and_the_heads():
    plain = make_analysis("good movie")
    assert analysis_details(plain) == "Integrated gradients · explains P(positive <i>) · all heads"
    pruned = replace(plain, request=replace(plain.request, ablate="0:1,1:*"),
                     attribution=replace(plain.attribution, method="lime"))
    assert analysis_details(pruned) == "LIME (words) · explains P(positive <i>) · without heads 0:1,1:*"
    assert analyses_details([plain, plain]) == analysis_details(plain)
    assert analyses_details([plain, pruned]).startswith("first: Integrated gradients")
