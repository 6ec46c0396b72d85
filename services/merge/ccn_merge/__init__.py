"""The merge service: finalised results merged field by field into the canonical datasets of
funders and opportunities, each field with its provenance, critical changes held for review,
and immutable numbered versions with diffs between them. It owns the dataset aggregate."""
