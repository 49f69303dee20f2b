import inspect

import pytest
from tests.unit.architecture.modules import all_modules


@pytest.mark.parametrize("module", all_modules(), ids=lambda m: m.__name__)
def test_module_declares_its_public_surface(module: object) -> None:
    name = getattr(module, "__name__", "?")
    exported = getattr(module, "__all__", None)
    if name.count(".") == 1 and not getattr(module, "__file__", None):
        return  # a namespace portion with no __init__
    assert exported is not None, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ has duplicates"
    for item in exported:
        assert hasattr(module, item), f"{name}.__all__ names {item}, which does not exist"
    defined_here = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and (inspect.isclass(v) or inspect.isfunction(v))
        and getattr(v, "__module__", None) == name
    }
    hidden = defined_here - set(exported)
    assert not hidden, f"{name} defines public {sorted(hidden)} outside __all__; export or prefix _"
