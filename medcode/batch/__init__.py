"""`medcode batch`: many encounters in, one `/v1/suggest` result per encounter out, in this process or on
a Ray cluster; resumable shard by shard, failures in an errors file, nothing coded twice.

- `inputs`: the project's JSONL, Parquet and FHIR Bulk Data NDJSON, read in a fixed order;
- `output`: the output folder, written shard by shard with atomic renames;
- `engines`: the in-process loop and the Ray Data actor pool, each loading the model once;
- `runner`: one run from input to summary; `cli`: the command.
"""
