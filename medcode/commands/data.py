"""`medcode codes show|search`, `medcode data check` and `medcode data fetch`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medcode.data.errors import DatasetNotFoundError, UnknownCodeError
from medcode.settings import get_settings

if TYPE_CHECKING:  # the code sets and their search load when a command uses them, not when `medcode` starts
    from medcode.data.codesystems import CodeSets

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    codes = subparsers.add_parser(
        "codes", help="look up and search medical codes", description="Code lookup."
    )
    codes_sub = codes.add_subparsers(dest="codes_command", metavar="ACTION")
    codes.set_defaults(func=lambda args: _help(codes))

    show = codes_sub.add_parser(
        "show",
        help="show one code: title, parents, billable, chapter/block, notes",
        description="Show one code (ICD-10-CM, ICD-10-PCS, HCPCS or CPT): title, parents, billable, notes.",
    )
    show.add_argument("code", metavar="CODE", help='the code, with or without a dot ("E11.22", "e1122")')
    show.add_argument("--system", help="ICD-10-CM, ICD-10-PCS, HCPCS or CPT (default: guessed from the code)")
    show.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    show.set_defaults(func=_show)

    search = codes_sub.add_parser(
        "search",
        help="search codes by text (titles, inclusion terms, index terms)",
        description="Rank codes by text similarity to TEXT.",
    )
    search.add_argument("text", metavar="TEXT", nargs="+", help="words to search for")
    search.add_argument("--system", help="restrict to ICD-10-CM, ICD-10-PCS, HCPCS or CPT")
    search.add_argument("--limit", type=int, default=10, help="number of results (default 10)")
    search.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    search.set_defaults(func=_search)

    data = subparsers.add_parser("data", help="inspect the datasets folder", description="Dataset tools.")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION")
    data.set_defaults(func=lambda args: _help(data))
    check = data_sub.add_parser(
        "check",
        help="list the datasets present under MEDCODE_DATA_DIR with document and label counts",
        description="Which datasets are present under the data folder, with document and label counts.",
    )
    check.add_argument("--data-dir", type=Path, help="datasets folder (default: MEDCODE_DATA_DIR)")
    check.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    check.set_defaults(func=_check)
    fetch = data_sub.add_parser(
        "fetch",
        help="download the public sources into MEDCODE_DATA_DIR (checksums, resume)",
        description="Download the public sources (CodiEsp, ICD-10-CM tables and index, ICD-10-PCS, HCPCS, "
        "Disease Ontology) into the data folder. Sources already there are skipped; an interrupted "
        "download resumes on the next run.",
    )
    fetch.add_argument("names", metavar="NAME", nargs="*", help="sources to fetch (default: all; see --list)")
    fetch.add_argument("--data-dir", type=Path, help="datasets folder (default: MEDCODE_DATA_DIR)")
    fetch.add_argument("--force", action="store_true", help="download even when the files are there")
    fetch.add_argument("--list", action="store_true", help="list the sources, their licences and URLs")
    fetch.add_argument(
        "--sources", type=Path, help="a source list other than the packaged one (same JSON shape; a mirror)"
    )
    fetch.set_defaults(func=_fetch)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


# ---------------------------------------------------------------------------------------------- codes show


def _icd10cm_details(code: str) -> dict[str, Any]:
    from medcode.data.icd10cm import NOTE_KINDS, load_icd10cm

    icd = load_icd10cm(get_settings().cache_dir)
    entry = icd[code]
    chapter = icd.groupings.get(entry.chapter)
    block = icd.groupings.get(entry.block)
    notes = {kind: list(entry.notes_of(kind)) for kind in NOTE_KINDS}
    inherited = {
        kind: [
            f"{where}: {text}"
            for where, text in icd.applicable_notes(entry.code, kind)
            if where != entry.code
        ]
        for kind in NOTE_KINDS
    }
    return {
        "system": "ICD-10-CM",
        "version": icd.version,
        "code": entry.code,
        "title": entry.title,
        "billable": entry.billable,
        "chapter": {"id": entry.chapter, "title": chapter.title if chapter else ""},
        "block": {"id": entry.block, "title": block.title if block else ""},
        "parents": [{"code": p, "title": icd[p].title} for p in icd.parents(entry.code)],
        "children": icd.children(entry.code),
        "inclusion_terms": list(entry.inclusion_terms),
        "includes": list(entry.includes),
        "notes": list(entry.notes),
        **notes,
        "inherited_notes": {k: v for k, v in inherited.items() if v},
        "seventh_characters": dict(entry.seventh_chars),
    }


def _other_details(code: str, system: str | None) -> dict[str, Any]:

    code_sets = _code_sets()
    info = code_sets.lookup(code, system)
    if info is None:
        raise UnknownCodeError(code, system or _guess_system_name(code_sets, code))
    details: dict[str, Any] = {
        "system": info.system,
        "version": code_sets.available().get(info.system, info.system),
        "code": info.code,
        "title": info.title,
        "billable": info.billable,
    }
    pcs = code_sets.icd10pcs
    if info.system == "ICD-10-PCS" and pcs is not None and pcs.tables is not None:
        details["axes"] = [
            {"position": a.position, "axis": a.axis, "value": a.label} for a in pcs.tables.axes(code)
        ]
    if info.system == "CPT" and info.code in code_sets.cpt.em_visits:
        visit = code_sets.cpt.em_visits[info.code]
        details["em"] = {
            "patient": visit.patient,
            "mdm": visit.mdm,
            "minutes": [visit.time_min, visit.time_max],
        }
    return details


def _guess_system_name(code_sets: Any, code: str) -> str:
    systems = code_sets.candidate_systems(code)
    return "/".join(systems) if systems else "medical"


def show_details(code: str, system: str | None = None) -> dict[str, Any]:
    """Everything `medcode codes show` prints, as a dict; UnknownCodeError when no system knows the code."""
    from medcode.data.codesystems import canonical_system

    code = code.strip()
    wanted = canonical_system(system) if system else None
    if wanted is None:
        code_sets = _code_sets()
        info = code_sets.lookup(code)
        if info is None:
            raise UnknownCodeError(code, _guess_system_name(code_sets, code))
        wanted = info.system
    if wanted == "ICD-10-CM":
        return _icd10cm_details(code)
    return _other_details(code, wanted)


def _print_details(details: dict[str, Any]) -> None:
    print(f"{details['code']}  {details['title']}")
    print(f"  system:    {details['version']}")
    print(f"  billable:  {'yes' if details['billable'] else 'no'}")
    if "chapter" in details:
        print(f"  chapter:   {details['chapter']['id']}  {details['chapter']['title']}")
        print(f"  block:     {details['block']['id']}  {details['block']['title']}")
    for parent in details.get("parents", []):
        print(f"  parent:    {parent['code']}  {parent['title']}")
    if details.get("children"):
        shown = ", ".join(details["children"][:12])
        more = len(details["children"]) - 12
        print(f"  children:  {shown}{f' (+{more} more)' if more > 0 else ''}")
    labels = (
        ("inclusion_terms", "inclusion"),
        ("includes", "includes"),
        ("notes", "note"),
        ("excludes1", "Excludes1"),
        ("excludes2", "Excludes2"),
        ("code_first", "code first"),
        ("use_additional", "use additional"),
        ("code_also", "code also"),
    )
    for key, label in labels:
        for text in details.get(key, []):
            print(f"  {label + ':':<24} {text}")
    for kind, texts in details.get("inherited_notes", {}).items():
        for text in texts:
            print(f"  {kind.replace('_', ' ') + ' (above):':<24} {text}")
    for char, meaning in details.get("seventh_characters", {}).items():
        print(f"  7th char {char}:  {meaning}")
    for axis in details.get("axes", []):
        print(f"  {axis['position']} {axis['axis']}: {axis['value']}")
    if "em" in details:
        em = details["em"]
        low, high = em["minutes"]
        minutes = f"{low}-{high} min" if low is not None else "no time threshold"
        print(f"  E/M:       {em['patient']} patient, MDM {em['mdm']}, {minutes}")


def _show(args: argparse.Namespace) -> int:
    details = show_details(args.code, args.system)
    if args.format == "json":
        print(json.dumps(details, ensure_ascii=False))
    else:
        _print_details(details)
    return 0


# ---------------------------------------------------------------------------------------------- search


def _code_sets() -> CodeSets:
    """The code sets the settings name: the datasets folder and a licensed CPT file, each optional."""
    from medcode.data.codesystems import load_code_sets
    from medcode.data.icd10cm import load_icd10cm

    settings = get_settings()
    load_icd10cm(settings.cache_dir)
    return load_code_sets(settings.data_dir, settings.cpt_file)


def _search(args: argparse.Namespace) -> int:
    from medcode.data.codesystems import canonical_system
    from medcode.data.search import get_code_search

    text = " ".join(args.text)
    system = canonical_system(args.system) if args.system else None
    if args.limit < 1:
        raise ValueError("--limit must be at least 1")
    settings = get_settings()
    hits = get_code_search(_code_sets(), settings.cache_dir).search(text, system=system, limit=args.limit)
    if args.format == "json":
        print(
            json.dumps(
                {
                    "query": text,
                    "hits": [
                        {
                            "code": h.code,
                            "system": h.system,
                            "title": h.title,
                            "score": h.score,
                            "matched_term": h.matched_term,
                        }
                        for h in hits
                    ],
                },
                ensure_ascii=False,
            )
        )
        return 0
    if not hits:
        print("no matching codes")
        return 0
    width = max(len(h.code) for h in hits)
    for hit in hits:
        matched = "" if hit.matched_term in (hit.title, hit.code) else f"  [{hit.matched_term}]"
        print(f"{hit.code:<{width}}  {hit.score:.3f}  {hit.system:<10}  {hit.title}{matched}")
    return 0


# ---------------------------------------------------------------------------------------------- data check


def check_datasets(data_dir: Path) -> dict[str, Any]:
    """What `medcode data check` reports, as a dict."""
    from medcode.data import codiesp
    from medcode.data.corpora import load_codiesp
    from medcode.data.disease_ontology import find_do_folder, load_disease_ontology
    from medcode.data.hcpcs import find_hcpcs_file, load_hcpcs
    from medcode.data.icd10cm_index import find_index_files, read_any
    from medcode.data.icd10pcs import find_pcs_files, load_icd10pcs

    report: dict[str, Any] = {"data_dir": str(data_dir), "datasets": {}}
    found = report["datasets"]
    root = codiesp.resolve_root(data_dir)
    splits = codiesp.available_splits(root)
    if splits:
        found["codiesp"] = {
            split: load_codiesp(root, split).report.summary()  # type: ignore[union-attr]
            for split in splits
        }
        background = root / "background_text_files_en.tar.gz"
        found["codiesp"]["background_archive"] = background.is_file()
    index_files = find_index_files(data_dir)
    if index_files:
        found["icd10cm_index"] = {
            kind: {"file": path.name, "rows": len(read_any(path, kind))} for kind, path in index_files.items()
        }
    codes_file, tables_file = find_pcs_files(data_dir)
    if codes_file is not None:
        pcs = load_icd10pcs(data_dir, with_tables=False)
        found["icd10pcs"] = {
            "version": pcs.version,
            "codes": len(pcs),
            "tables": tables_file.name if tables_file else None,
        }
    if find_hcpcs_file(data_dir) is not None:
        hcpcs = load_hcpcs(data_dir)
        found["hcpcs"] = {"version": hcpcs.version, "codes": len(hcpcs), "modifiers": len(hcpcs.modifiers())}
    if find_do_folder(data_dir) is not None:
        ontology = load_disease_ontology(data_dir)
        found["disease_ontology"] = {
            "version": ontology.version,
            "terms": len(ontology),
            "pairs_with_icd10cm": sum(1 for _ in ontology.pairs()),
        }
    mimic = data_dir / "mimic-iv-demo" / "hosp"
    if mimic.is_dir():
        found["mimic_iv_demo"] = {"files": sorted(p.name for p in mimic.glob("*.csv*"))}
    return report


def missing_sources(data_dir: Path, found: dict[str, Any]) -> list[dict[str, str]]:
    """The downloadable sources neither found by the readers nor fetched under `data_dir`."""
    from medcode.data.fetch import is_present, load_sources

    return [
        {"name": s.name, "title": s.title, "fetch": f"medcode data fetch {s.name}"}
        for s in load_sources().values()
        if s.provides not in found and not is_present(s, data_dir)
    ]


def _print_check(report: dict[str, Any]) -> None:
    print(f"data folder: {report['data_dir']}")
    datasets = report["datasets"]
    if not datasets:
        print("  no known datasets found")
    for split, summary in datasets.get("codiesp", {}).items():
        if split == "background_archive":
            print(f"  codiesp background: {'present' if summary else 'absent'}")
            continue
        missing_p = summary["missing_procedure_codes"]
        print(
            f"  codiesp {split}: {summary['documents']} documents, "
            f"{summary['diagnosis_labels']} diagnosis labels ({summary['distinct_diagnosis']} codes, "
            f"{summary['missing_diagnosis_codes']} not in ICD-10-CM), "
            f"{summary['procedure_labels']} procedure labels ({summary['distinct_procedure']} codes, "
            f"{'unchecked' if missing_p is None else missing_p} not in ICD-10-PCS)"
        )
    for kind, info in datasets.get("icd10cm_index", {}).items():
        print(f"  icd10cm index ({kind}): {info['rows']} rows from {info['file']}")
    if "icd10pcs" in datasets:
        pcs = datasets["icd10pcs"]
        print(f"  icd10pcs: {pcs['version']}, {pcs['codes']} codes, tables: {pcs['tables'] or 'absent'}")
    if "hcpcs" in datasets:
        h = datasets["hcpcs"]
        print(f"  hcpcs: {h['version']}, {h['codes']} codes ({h['modifiers']} modifiers)")
    if "disease_ontology" in datasets:
        d = datasets["disease_ontology"]
        print(
            f"  disease ontology: {d['version']}, {d['terms']} terms, {d['pairs_with_icd10cm']} ICD-10-CM synonyms"
        )
    if "mimic_iv_demo" in datasets:
        print(f"  mimic-iv demo: {len(datasets['mimic_iv_demo']['files'])} files")
    for missing in report.get("missing", []):
        print(f"  missing: {missing['name']} ({missing['title']}): get it with `{missing['fetch']}`")


def _check(args: argparse.Namespace) -> int:
    data_dir = args.data_dir or get_settings().data_dir
    if data_dir is None:
        raise DatasetNotFoundError("no data folder: set MEDCODE_DATA_DIR or pass --data-dir")
    if not Path(data_dir).is_dir():
        raise DatasetNotFoundError(f"data folder not found: {data_dir}")
    report = check_datasets(Path(data_dir))
    report["missing"] = missing_sources(Path(data_dir), report["datasets"])
    if args.format == "json":
        print(json.dumps(report, ensure_ascii=False))
    else:
        _print_check(report)
    return 0 if report["datasets"] else 1


# ---------------------------------------------------------------------------------------------- data fetch


def _fetch(args: argparse.Namespace) -> int:
    from medcode.data.fetch import FetchError, fetch, load_sources, select

    sources = select(load_sources(args.sources), args.names)
    if args.list:
        for s in sources:
            print(f"{s.name}: {s.title} [{s.licence}]")
            for d in s.downloads:
                print(f"  {d.url}  sha256 {d.sha256 or 'unknown'}")
        return 0
    data_dir = args.data_dir or get_settings().data_dir
    if data_dir is None:
        raise DatasetNotFoundError("no data folder: set MEDCODE_DATA_DIR or pass --data-dir")
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for source in sources:
        try:
            result = fetch(source, data_dir, progress=sys.stderr.isatty(), force=args.force)
        except FetchError as exc:
            print(f"medcode: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        if result.skipped:
            print(f"{source.name}: already there (--force to download again)")
        else:
            print(f"{source.name}: {len(result.placed)} files under {data_dir}")
    return 1 if failed else 0
