"""The one helper of the stand-in: a name that raises when used."""

def _unavailable(name):
    def fail(*args, **kwargs):
        raise RuntimeError(f"torchvision.{name} is not available in the benchmark's stand-in")

    fail.__name__ = name.rsplit(".", 1)[-1]
    return fail
