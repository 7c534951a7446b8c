"""The editor's templates: which one the schema came from, loading one over the user's
edits (asking first), saving the schema as one, deleting one of the user's."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual.widgets import Select, TextArea

from ..core.dataset.templates import dataset_names, dataset_text
from ..core.errors import UserInputError
from ..core.templates import NAME_RULES, delete_template, is_builtin, save_template
from ..core.templates import template_text as schema_template_text
from .run_form import template_options

if TYPE_CHECKING:
    from .editor import EditorScreen


def template_text(name: str) -> str:
    """A record schema template's text, or a built-in dataset's (shop, company, helpdesk)."""
    if name in dataset_names() and not is_builtin(name):
        return dataset_text(name)
    return schema_template_text(name)


class EditorTemplates:
    """The template the editor's schema came from (``name``) and what it loaded then
    (``loaded_text``): the Template field names it only while that text is unchanged."""

    def __init__(self, screen: EditorScreen, name: str | None) -> None:
        self.screen = screen
        self.name = name
        self.loaded_text: str | None = template_text(name) if name else None

    @property
    def area(self) -> TextArea:
        return self.screen.query_one("#schema-editor", TextArea)

    def choose(self, name: str) -> None:
        """Load a template; when the schema holds edits of its own, ask first. Either way
        the replaced text stays one ctrl+z away."""
        area = self.area
        if name == self.name and self.is_unchanged(area.text):
            return
        try:
            text = template_text(name)
        except UserInputError as exc:
            self.screen.notify(exc.remedy("tui"), severity="error")
            self.label(area.text)
            return
        if self.is_unchanged(area.text):
            self.load(text, name)
            return

        def answer(choice: str | None) -> None:
            if choice == "replace":
                self.load(text, name)
            else:
                self.label(area.text)

        from .dialogs import ChoiceDialog

        self.screen.app.push_screen(ChoiceDialog(
            f"The schema in the editor has changes of yours. Replace it with the template {name}? "
            "(ctrl+z in the editor brings it back.)",
            [("replace", "r", "Replace"), ("keep", "escape", "Keep my schema")]), answer)

    def is_unchanged(self, text: str) -> bool:
        """Is ``text`` what a template (or a past run) put in the editor, unchanged?"""
        return self.loaded_text is not None and text == self.loaded_text

    def load(self, text: str, template: str | None) -> None:
        area = self.area
        area.replace(text, area.document.start, area.document.end)  # undoable, unlike load_text
        area.move_cursor(area.document.start)
        self.name = template
        self.loaded_text = text
        self.screen.check_now()

    def label(self, text: str) -> None:
        """The Template field names the template only while the editor holds it unchanged."""
        select = self.screen.query_one("#template", Select)
        name = self.name
        with self.screen.prevent(Select.Changed):
            if name is not None and text == self.loaded_text and name in dict(template_options()).values():
                select.prompt = "(your schema)"  # the blank choice in the list, should it be picked
                select.value = name
            else:
                select.prompt = f"{name} (edited)" if name else "(your schema)"
                select.clear()

    def save(self) -> None:
        """Ask for a name and keep the schema as the user's template of that name."""
        from .dialogs import NameDialog

        if self.screen.check_now() is None and self.screen.dataset is not None:
            self.screen.notify("A template holds one record schema: keep a dataset in a file of its own.")
            return
        if self.screen.check_now() is None:
            self.screen.notify("Fix the schema before saving it as a template.", severity="error")
            return
        text = self.area.text
        saved: list[Path] = []

        def save(name: str) -> None:  # a refusal is said in the dialog, which stays open
            saved.append(save_template(name, text, force=True))

        def done(name: str | None) -> None:
            if not name or not saved:
                return
            self.name = name
            self.loaded_text = text
            self.refresh()
            self.screen.notify(f"Saved to {saved[-1]}", title=f"Template {name}")

        self.screen.app.push_screen(NameDialog("Save this schema as a template named:", save,
                                               hint=f"A name of {NAME_RULES}."), done)

    def delete(self) -> None:
        """Delete the chosen template, if it is one of the user's, once they confirm."""
        from .dialogs import ConfirmDialog

        name = self.name
        if name is None:
            self.screen.notify("Choose one of your templates first.")
            return
        if is_builtin(name) or name in dataset_names():
            self.screen.notify(f"{name} is a built-in template; only your own can be deleted.")
            return

        def done(yes: bool | None) -> None:
            if yes:
                try:
                    delete_template(name)
                except UserInputError as exc:
                    self.screen.notify(exc.remedy("tui"), severity="error")
                    return
                if self.name == name:
                    self.name = None
                self.refresh()
                self.screen.notify(f"Deleted template {name}.")

        self.screen.app.push_screen(ConfirmDialog(f"Delete your template {name}?"), done)

    def refresh(self) -> None:
        """The Template field's list anew (a template saved or deleted)."""
        with self.screen.prevent(Select.Changed):
            self.screen.query_one("#template", Select).set_options(template_options())
        self.label(self.area.text)
