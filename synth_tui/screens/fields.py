"""Text fields that keep the order of fast keystrokes.

In a text field, Textual handles a printable key inside the field but an editing key
(backspace, delete, arrows) by letting it bubble up to the App, which runs the field's
binding later. Keys that arrive together (a paste from tmux ``send-keys``, fast typing
over SSH) then run out of order: backspace, 1 on "20" gave "20" instead of "21". These
fields run their own bindings as each key arrives, in order.
"""

from __future__ import annotations

from textual import events
from textual.widget import Widget
from textual.widgets import Input, TextArea


async def run_own_binding(widget: Widget, event: events.Key) -> bool:
    """Run ``widget``'s own (non-priority) binding for this key now; True if one ran."""
    for binding in widget._bindings.key_to_bindings.get(event.key, ()):
        if not binding.priority and await widget.app.run_action(binding.action, widget):
            event.stop()
            event.prevent_default()
            return True
    return False


# Textual calls ``_on_key`` of every class up the MRO until one prevents the default: a
# binding run here stops there; any other key goes on to Input's or TextArea's own handler.


class Field(Input):
    async def _on_key(self, event: events.Key) -> None:
        await run_own_binding(self, event)


class SchemaArea(TextArea):
    async def _on_key(self, event: events.Key) -> None:
        await run_own_binding(self, event)
