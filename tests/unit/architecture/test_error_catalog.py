from tests.unit.architecture.modules import all_modules

from dure.policies.errors import CATALOG, DureError


def _subclasses(cls: type[DureError]) -> set[type[DureError]]:
    found = set()
    for sub in cls.__subclasses__():
        found.add(sub)
        found |= _subclasses(sub)
    return found


def test_every_error_is_in_the_catalog() -> None:
    all_modules()
    classes = _subclasses(DureError) | {DureError}
    unmapped = [c for c in classes if c.code not in CATALOG]
    missing = sorted(f"{c.__module__}.{c.__qualname__} ({c.code})" for c in unmapped)
    assert not missing, f"errors missing from CATALOG: {missing}"


def test_codes_are_unique_per_class_and_catalog_has_no_orphans() -> None:
    all_modules()
    classes = [c for c in _subclasses(DureError) if not c.__module__.startswith("tests.")]
    codes = [c.code for c in classes]
    duplicated = {code for code in codes if codes.count(code) > 1}
    assert not duplicated, f"several classes share codes {duplicated}"
    orphans = set(CATALOG) - set(codes) - {DureError.code}
    assert not orphans, f"CATALOG lists codes no error uses: {orphans}"


def test_outcomes_are_failures() -> None:
    for code, outcome in CATALOG.items():
        assert outcome.exit_code not in (0, 2), code  # 2 is the CLI's usage error
        assert 400 <= outcome.http_status <= 599, code


def test_every_error_has_a_hint() -> None:
    all_modules()
    for cls in _subclasses(DureError):
        assert cls.default_hint and cls.__doc__, cls
