"""``templates``: list, show, save and delete schema templates (built-in and the user's)."""

from __future__ import annotations

import argparse

from .args import Subparsers
from .output import EXIT_OK, out, say


def add_parser(subparsers: Subparsers) -> None:
    t = subparsers.add_parser("templates", help="list, show, save and delete schema templates")
    actions = t.add_subparsers(dest="action")
    actions.add_parser("list", help="built-in and your templates (the default)")
    show = actions.add_parser("show", help="print a template")
    show.add_argument("name")
    save = actions.add_parser("save", help="save a schema file as your template")
    save.add_argument("name")
    save.add_argument("file")
    save.add_argument("--force", action="store_true", help="replace a template of yours with that name")
    delete = actions.add_parser("delete", help="delete one of your templates")
    delete.add_argument("name")
    t.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..core import templates
    from ..core.dataset.templates import dataset_names, dataset_text
    from ..core.export import safe_json_text
    from ..core.textsafe import clean_line
    from .args import read_schema_text

    action = args.action or "list"
    if action == "list":
        lines = [f"{clean_line(name):<20} {'built-in' if templates.is_builtin(name) else 'yours'}"
                 for name in templates.template_names()]
        lines += [f"{name:<20} built-in dataset" for name in dataset_names()]
        out("\n".join(lines))
    elif action == "show":
        known = args.name in dataset_names() and args.name not in templates.template_names()
        out(safe_json_text(dataset_text(args.name) if known else templates.template_text(args.name)))
    elif action == "save":
        path = templates.save_template(args.name, read_schema_text(args.file), force=args.force)
        say(f"saved template {clean_line(args.name)} to {clean_line(path)}")
    elif action == "delete":
        templates.delete_template(args.name)
        say(f"deleted template {clean_line(args.name)}")
    return EXIT_OK
