"""Consistency report over a loaded lexicon: overlaps that load fine but surprise editors."""
from __future__ import annotations

from nlp.lexicon.model import Lexicon


def check_lexicon(lex: Lexicon) -> list[str]:
    """Warnings about overlapping or conflicting entries (the lexicon still loads).

    Reported: a keyword listed under two codes of the same kind; a keyword that is part of a
    longer keyword of another code of the same kind (the longer one wins where both match);
    a brand form claimed by two brands or also used as a product/department; own brands that
    are listed as competitors; stages without a required-fields entry.
    """
    issues: list[str] = []
    for kind, groups in (("stages", lex.stages), ("concerns", lex.concerns), ("cues", lex.cues)):
        owner: dict[str, str] = {}
        for group in groups:
            for kw in group.keywords:
                if kw in owner and owner[kw] != group.code:
                    issues.append(f"{kind}: keyword {kw!r} is listed in both {owner[kw]} and {group.code}")
                owner.setdefault(kw, group.code)
        items = sorted(owner.items(), key=lambda kv: len(kv[0]))
        for i, (short, code) in enumerate(items):
            for long, other in items[i + 1:]:
                if other != code and len(long) > len(short) and short in long:
                    issues.append(f"{kind}: keyword {short!r} ({code}) is part of {long!r} ({other}); "
                                  f"where {long!r} appears it counts as {other} only")
    brand_of: dict[str, str] = {}
    for brand in lex.brands:
        for form in brand.forms:
            key = form.lower()
            if key in brand_of and brand_of[key] != brand.id:
                issues.append(f"competitors: {form!r} is claimed by brands {brand_of[key]} and {brand.id}")
            brand_of.setdefault(key, brand.id)
    others = {t: "products" for t in lex.product_terms} | {t: "departments" for t in lex.departments}
    for form, bid in brand_of.items():
        for term, where in others.items():
            if form == term.lower():
                issues.append(f"competitors: brand form {form!r} ({bid}) is also listed in {where}")
    for own in lex.own_brands:
        if own.lower() in brand_of:
            issues.append(f"competitors: own brand {own!r} is also listed as competitor {brand_of[own.lower()]} "
                          "(it will never be reported)")
    dept = set(lex.departments)
    for term in lex.product_terms:
        for d in dept:
            if term in d and term != d:
                issues.append(f"products: term {term!r} is part of department {d!r}; inside the department name "
                              "it is not reported as a product")
                break
    for stage in lex.stage_order:
        if stage not in lex.required:
            issues.append(f"required: stage {stage!r} has no entry; required.default is used")
    return issues
