"""The speed–quality benchmark (`aid bench`): every method × cost × mask kind on held-out images (run),
and its tables and plots (report)."""
