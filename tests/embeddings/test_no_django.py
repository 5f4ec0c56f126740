"""The embeddings package stays plain PyTorch."""

import subprocess
import sys


def test_embeddings_imports_without_django() -> None:
    code = (
        "import sys, embeddings, embeddings.extractor, embeddings.registry, "
        "embeddings.preprocess, embeddings.images\n"
        "leaked = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        "assert not leaked, leaked\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
