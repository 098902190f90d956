"""C++ emitters: Plan -> readable C++ source text."""
