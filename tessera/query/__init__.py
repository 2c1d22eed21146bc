"""Primitives with no state of their own: the filter model and its parser and checks,
scoring and distances, sparse and multivector math, formulas, fusion, payload paths,
datetimes, geo math, the text tokenizer. May import only the core modules."""
