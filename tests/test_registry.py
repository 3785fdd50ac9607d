import pytest

from doublecross.registry import Registry


def test_register_create_and_names():
    reg: Registry = Registry("thing")

    @reg.register("a")
    def make_a(x: int = 1, y: int = 2):
        """Makes a."""
        return (x, y)

    assert reg.names() == ["a"] and "a" in reg and len(reg) == 1
    assert reg.create("a", x=5, y=None) == (5, 2)  # None kwargs dropped -> defaults
    assert reg.entries()[0].summary == "Makes a."


def test_duplicate_and_unknown_names_are_errors():
    reg: Registry = Registry("thing")
    reg.register("a")(lambda: 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(lambda: 2)
    with pytest.raises(ValueError, match=r"unknown thing 'b'; choose one of: a"):
        reg.create("b")
