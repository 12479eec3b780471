"""Find stale flags: past their lifetime, constant for too long, unused, or out of step with the code."""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from swordfish.features import registry
from swordfish.features.admin import constant_value
from swordfish.features.counters import FlagUsage
from swordfish.features.registry import FlagDeclaration, FlagKind

FEATURES_DIR = Path(__file__).resolve().parent
CODE_ROOT = FEATURES_DIR.parent.parent  # functions/
EVALUATE_METHODS = frozenset({"evaluate", "is_on"})


def _registry_constants() -> dict[str, str]:
    return {
        name: value
        for name, value in vars(registry).items()
        if name.isupper() and isinstance(value, str) and registry.FLAG_NAME_PATTERN.match(value)
    }


def referenced_flags(
    root: Path = CODE_ROOT,
    *,
    exclude: Path | None = FEATURES_DIR,
    experimental_detectors: frozenset[str] | None = None,
) -> dict[str, list[str]]:
    """Flag names the code under ``root`` evaluates, with where (``path:line``).

    A reference is ``<x>.evaluate(NAME, ...)`` / ``is_on(NAME, ...)`` where NAME is a string
    literal or a registry constant, any use of a registry constant (``registry.AUTO_QUARANTINE``),
    or ``detector_flag("x")``; plus ``detector_<name>`` for each of the analysis engine's
    ``EXPERIMENTAL_DETECTORS``. The features package itself is excluded: declaring is not using.
    """
    constants = _registry_constants()
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(root.rglob("*.py")):
        if exclude is not None and exclude in path.resolve().parents:
            continue
        try:
            tree = ast.parse(path.read_text(), filename=str(path))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        relative = path.relative_to(root)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                fname = (
                    func.attr
                    if isinstance(func, ast.Attribute)
                    else func.id
                    if isinstance(func, ast.Name)
                    else None
                )
                arg = (
                    node.args[0]
                    if node.args
                    else next((k.value for k in node.keywords if k.arg == "name"), None)
                )
                if fname in EVALUATE_METHODS and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found[arg.value].append(f"{relative}:{node.lineno}")
                elif (
                    fname == "detector_flag" and isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                ):
                    found[registry.detector_flag(arg.value)].append(f"{relative}:{node.lineno}")
            elif isinstance(node, ast.Attribute) and node.attr in constants:
                found[constants[node.attr]].append(f"{relative}:{node.lineno}")
            elif isinstance(node, ast.ImportFrom) and node.module == "swordfish.features.registry":
                for alias in node.names:
                    if alias.name in constants:
                        found[constants[alias.name]].append(f"{relative}:{node.lineno}")
    if experimental_detectors is None:
        experimental_detectors = _experimental_detectors()
    for detector in experimental_detectors:
        found[registry.detector_flag(detector)].append("swordfish.analysis.EXPERIMENTAL_DETECTORS")
    return dict(found)


def _experimental_detectors() -> frozenset[str]:
    try:
        from swordfish import analysis
    except Exception:  # noqa: BLE001 - the analysis package failing to import is its own test's business
        return frozenset()
    return frozenset(getattr(analysis, "EXPERIMENTAL_DETECTORS", frozenset()))


@dataclass(frozen=True)
class Thresholds:
    constant_days: int = 30  # fully on / fully off for longer than this
    unused_days: int = 30  # not evaluated for longer than this


@dataclass
class StaleFlag:
    name: str
    reasons: list[str] = field(default_factory=list)
    defined: bool = True
    referenced: bool = True

    @property
    def removable(self) -> bool:
        """Cleanup removes only flags the code no longer reads (remove the references first)."""
        return self.defined and not self.referenced


def find_stale(
    document: dict[str, Any],
    references: dict[str, list[str]],
    *,
    usage: dict[str, FlagUsage] | None,
    last_changes: dict[str, datetime],
    declarations: dict[str, FlagDeclaration] | None = None,
    now: datetime | None = None,
    thresholds: Thresholds = Thresholds(),
) -> list[StaleFlag]:
    declarations = registry.DECLARATIONS if declarations is None else declarations
    now = now or datetime.now(UTC)
    stale: dict[str, StaleFlag] = {}

    def flag(name: str) -> StaleFlag:
        return stale.setdefault(
            name, StaleFlag(name, defined=name in document, referenced=name in references)
        )

    for name in sorted(set(document) | set(references) | set(declarations)):
        decl = declarations.get(name)
        born = datetime.combine(decl.created, datetime.min.time(), UTC) if decl else None
        if name in document and name not in references:
            flag(name).reasons.append("defined but never referenced in the code")
        if name in references and name not in document:
            flag(name).reasons.append(
                f"referenced in the code ({references[name][0]}) but not defined in the store"
            )
        if name in document and decl is None:
            flag(name).reasons.append("not declared in the registry (no owner, kind or lifetime)")
        if decl and decl.expires and decl.expires < now.date():
            flag(name).reasons.append(
                f"past its expected lifetime ({decl.lifetime_days} days, expired {decl.expires})"
            )
        if name in document and (decl is None or decl.kind in (FlagKind.RELEASE, FlagKind.EXPERIMENT)):
            constant, value = constant_value(document[name])
            since = last_changes.get(name) or born
            if constant and since is not None and now - since > timedelta(days=thresholds.constant_days):
                state = (
                    "fully on" if value is True else "fully off" if value is False else f"constant {value!r}"
                )
                flag(name).reasons.append(
                    f"{state} since {since:%Y-%m-%d} (over {thresholds.constant_days} days)"
                )
        if usage is not None and name in document:
            seen = usage.get(name)
            last = seen.last_evaluated if seen else None
            since = last or last_changes.get(name) or born
            if since is not None and now - since > timedelta(days=thresholds.unused_days):
                what = f"last evaluated {last:%Y-%m-%d}" if last else "never evaluated"
                flag(name).reasons.append(f"{what} (over {thresholds.unused_days} days)")
    return [s for s in stale.values() if s.reasons]
