"""Where each key of a TOML text is: the line that defines every key path.

tomllib keeps no positions, so this small scanner walks a text that tomllib has already
accepted and notes the line where each key, table and array item begins; the profile
loader uses it to name the line of a bad key.
"""

from __future__ import annotations

import bisect
import re
from typing import Callable

KeyPath = tuple[str | int, ...]


def key_lines(text: str) -> dict[KeyPath, int]:
    """Each key path of a valid TOML text → the 1-based line that defines it (or its table or item)."""
    return _Scanner(text).scan()


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class _Scanner:
    """Walks TOML that tomllib has already accepted, noting where each key, table and item begins.

    Paths are as tomllib's data has them: `[[mock.faults]]` items are mock.faults.0,
    mock.faults.1, …; array elements get their index too, so a multi-line array points
    at the bad element's own line. Keys inside an inline table share its line.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.newlines = [match.start() for match in re.finditer("\n", text)]
        self.lines: dict[KeyPath, int] = {}
        self.items: dict[KeyPath, int] = {}  # [[array]] path → items so far

    def scan(self) -> dict[KeyPath, int]:
        table: KeyPath = ()
        while self._skip(newlines=True) < len(self.text):
            if self.text.startswith("[[", self.pos):
                table = self._header(array=True)
            elif self.text.startswith("[", self.pos):
                table = self._header(array=False)
            else:
                self._key_value(table)
        return self.lines

    def _line(self) -> int:
        return bisect.bisect_left(self.newlines, self.pos) + 1

    def _note(self, path: KeyPath, line: int) -> None:
        """The path starts here; its enclosing tables, if not yet seen, start here too (`a.b = 1`)."""
        for end in range(1, len(path)):
            self.lines.setdefault(path[:end], line)
        self.lines[path] = line

    def _skip(self, newlines: bool) -> int:
        """Past blanks and comments (and newlines); returns the new position."""
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in " \t" or (newlines and char in "\r\n"):
                self.pos += 1
            elif char == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            else:
                break
        return self.pos

    def _header(self, array: bool) -> KeyPath:
        line = self._line()
        self.pos += 2 if array else 1
        *outer, last = self._key()
        path = self._resolve(outer) + (last,)
        if array:
            index = self.items.get(path, 0)
            self.items[path] = index + 1
            path += (index,)
        self._skip(newlines=False)
        self.pos += 2 if array else 1
        self._note(path, line)
        return path

    def _resolve(self, keys: list[str]) -> KeyPath:
        """`[a.b]` under `[[a]]` means the last item of a: a.<index>.b."""
        path: KeyPath = ()
        for key in keys:
            path += (key,)
            if path in self.items:
                path += (self.items[path] - 1,)
        return path

    def _key(self) -> list[str]:
        keys = []
        while True:
            self._skip(newlines=False)
            if self.text[self.pos] in "\"'":
                start = self._string()
                keys.append(tomllib.loads(f"k = {self.text[start:self.pos]}")["k"])
            else:
                match = _BARE_KEY.match(self.text, self.pos)
                keys.append(match.group())
                self.pos = match.end()
            self._skip(newlines=False)
            if self.text[self.pos] != ".":
                return keys
            self.pos += 1

    def _key_value(self, table: KeyPath) -> None:
        """`a.b = value`, in a table or an inline table; TOML puts the value on the key's line."""
        path = table + tuple(self._key())
        self.pos += 1  # '='
        self._skip(newlines=False)
        self._value(path)

    def _value(self, path: KeyPath) -> None:
        self._note(path, self._line())
        char = self.text[self.pos]
        if char == "[":
            self._sequence("]", lambda index: self._value(path + (index,)))
        elif char == "{":
            self._sequence("}", lambda index: self._key_value(path))
        elif char in "\"'":
            self._string()
        else:  # number, bool, date: up to what may follow a value
            while self.pos < len(self.text) and self.text[self.pos] not in ",]}#\n":
                self.pos += 1

    def _sequence(self, close: str, element: Callable[[int], None]) -> None:
        """Past an array or inline table; `element(index)` reads each element where it begins."""
        self.pos += 1
        index = 0
        while self._skip(newlines=True) < len(self.text) and self.text[self.pos] != close:
            if self.text[self.pos] == ",":
                self.pos += 1
                index += 1
            else:
                element(index)
        self.pos += 1

    def _string(self) -> int:
        """Past one string of any of TOML's four kinds; returns where it began."""
        start, text = self.pos, self.text
        quote = text[start]
        if text.startswith(quote * 3, start):
            end = start + 3
            while not text.startswith(quote * 3, end):
                end += 2 if quote == '"' and text[end] == "\\" else 1
            while end < len(text) and text[end] == quote:
                end += 1  # the closing three, and up to two quotes of the content touching them
        else:
            end = start + 1
            while text[end] != quote:
                end += 2 if quote == '"' and text[end] == "\\" else 1
            end += 1
        self.pos = end
        return start
