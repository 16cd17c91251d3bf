"""gpt2web: GPT-2 in NumPy, the same engine in CPython and in the browser (Pyodide)."""

__version__ = "0.1.0"
