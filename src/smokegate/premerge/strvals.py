"""Helm's ``--set`` parser, ported from ``helm.sh/helm/v4/pkg/strvals/parser.go``.

helm-controller writes a ``valuesFrom`` entry with a ``targetPath`` through this parser
(``ReplacePathValue`` in ``github.com/fluxcd/pkg/chartutil/values.go`` builds
``<targetPath>=<value>`` and calls ``strvals.ParseInto``, or ``ParseIntoString`` when the value
is quoted), so its quirks are the behaviour users get and are kept on purpose:

* keys split at ``.``, ``[N]`` indexes lists, ``\\`` escapes the next character;
* the value is split at unescaped commas: ``a=x,b=y`` sets two keys, ``a=x,y`` is an error
  (``key "y" has no value``); ``{a,b}`` is a list;
* ``ParseInto`` types the value: ``true``/``false``/``null`` (any case), integers that do not
  start with ``0`` (and ``0`` itself); everything else is a string;
* existing maps and lists are updated in place (Go maps and slices alias exactly as Python
  dicts and lists do, which helm-controller's "targetPath wins over spec.values" relies on).
"""

from __future__ import annotations

import re
from typing import Any

MAX_INDEX = 65536
MAX_NESTED_NAME_LEVEL = 30


class StrvalsError(ValueError):
    pass


class _EOF(Exception):
    pass


class _NotList(Exception):
    pass


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def read(self) -> str:
        if self.pos >= len(self.text):
            raise _EOF
        ch = self.text[self.pos]
        self.pos += 1
        return ch

    def unread(self) -> None:
        self.pos -= 1

    def until(self, stop: str) -> tuple[str, str | None]:
        """Runes up to (not including) a stop rune, with ``\\`` escapes; the stop rune, or None
        at the end of input."""
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                return "".join(out), None
            ch = self.text[self.pos]
            self.pos += 1
            if ch in stop:
                return "".join(out), ch
            if ch == "\\":
                if self.pos >= len(self.text):
                    return "".join(out), None
                out.append(self.text[self.pos])
                self.pos += 1
            else:
                out.append(ch)


_INT = re.compile(r"[+-]?[0-9]+")


def typed_value(text: str, as_string: bool) -> Any:
    """``typedVal``: how ``--set`` (not ``--set-string``) types a value."""
    if as_string:
        return text
    low = text.lower()
    if low == "true":
        return True
    if low == "false":
        return False
    if low == "null":
        return None
    if text == "0":
        return 0
    if text and text[0] != "0" and _INT.fullmatch(text):
        value = int(text, 10)
        if -(2**63) <= value < 2**63:  # strconv.ParseInt(val, 10, 64)
            return value
    return text


def parse_into(line: str, dest: dict[str, Any], *, as_string: bool = False) -> None:
    """``strvals.ParseInto`` (``as_string``: ``ParseIntoString``): merge ``line`` into ``dest``
    in place. Raises ``StrvalsError`` with Helm's message."""
    parser = _Parser(_Scanner(line), as_string)
    while True:
        try:
            parser.key(dest, 0)
        except _EOF:
            return


class _Parser:
    """Each method mirrors the Go function of the same name. Go returns ``io.EOF`` as an
    error value; here it is the ``_EOF`` exception, raised exactly where Go returns it."""

    def __init__(self, sc: _Scanner, as_string: bool) -> None:
        self.sc = sc
        self.as_string = as_string

    def key(self, data: dict[str, Any], level: int) -> None:
        k, last = self.sc.until("=[,.")
        if last is None:
            if not k:
                raise _EOF
            raise StrvalsError(f'key "{k}" has no value')
        if last == "[":
            index = self._index()
            current = data.get(k, [])
            if not isinstance(current, list):
                raise StrvalsError(f"unable to parse key: interface conversion: {k} is not a list")
            lst, err = self.list_item(current, index, level)
            _set(data, k, lst)
            if err is not None:
                raise err
            return
        if last == "=":
            try:
                vl = self.val_list()
            except _EOF:
                _set(data, k, "")
                raise
            except _NotList:
                text, _ = self.sc.until(",")
                _set(data, k, typed_value(text, self.as_string))
                return
            _set(data, k, vl)
            return
        if last == ",":
            _set(data, k, "")
            raise StrvalsError(f'key "{k}" has no value (cannot end with ,)')
        # last == "."
        level += 1
        if level > MAX_NESTED_NAME_LEVEL:
            raise StrvalsError(
                "value name nested level is greater than maximum supported nested level of "
                f"{MAX_NESTED_NAME_LEVEL}"
            )
        inner = data.get(k, {})
        if not isinstance(inner, dict):
            raise StrvalsError(f"unable to parse key: interface conversion: {k} is not a map")
        failure: BaseException | None = None
        try:
            self.key(inner, level)
        except (_EOF, StrvalsError) as exc:
            failure = exc
        if failure is None and not inner:
            raise StrvalsError(f'key map "{k}" has no value')
        if inner:
            _set(data, k, inner)
        if failure is not None:
            raise failure

    def _index(self) -> int:
        text, last = self.sc.until("]")
        if last is None:
            raise _EOF
        if not _INT.fullmatch(text):
            raise StrvalsError(
                f'error parsing index: strconv.Atoi: parsing "{text}": invalid syntax'
            )
        return int(text, 10)

    def list_item(
        self, lst: list[Any], i: int, level: int
    ) -> tuple[list[Any], BaseException | None]:
        """Go's ``(list, error)``: the list to store (even with an error) and the error."""
        if i < 0:
            return lst, StrvalsError(f"negative {i} index not allowed")
        k, last = self.sc.until("[.=")
        if k:
            return lst, StrvalsError(f'unexpected data at end of array index: "{k}"')
        if last is None:
            return lst, _EOF()
        if last == "=":
            try:
                vl = self.val_list()
            except _EOF:
                return _set_index(lst, i, ""), None
            except _NotList:
                text, _ = self.sc.until(",")
                return _set_index(lst, i, typed_value(text, self.as_string)), None
            return _set_index(lst, i, vl), None
        if last == "[":
            next_i = self._index()
            current: list[Any] = []
            if len(lst) > i and lst[i] is not None:
                if not isinstance(lst[i], list):
                    raise StrvalsError(
                        f"unable to parse key: interface conversion: item {i} is not a list"
                    )
                current = lst[i]
            inner_list, err = self.list_item(current, next_i, level)
            if err is not None:
                return lst, err
            return _set_index(lst, i, inner_list), None
        # last == "."
        inner: dict[str, Any] = {}
        if len(lst) > i:
            if isinstance(lst[i], dict):
                inner = lst[i]
            else:
                lst[i] = inner  # "indices out of order": Go replaces the item in place
        try:
            self.key(inner, level)
        except (_EOF, StrvalsError) as exc:
            return lst, exc
        return _set_index(lst, i, inner), None

    def val_list(self) -> list[Any]:
        ch = self.sc.read()  # _EOF propagates: "key=" at the end sets ""
        if ch != "{":
            self.sc.unread()
            raise _NotList
        out: list[Any] = []
        while True:
            text, last = self.sc.until(",}")
            if last is None:
                raise StrvalsError("list must terminate with '}'")
            out.append(typed_value(text, self.as_string))
            if last == "}":
                if self.sc.pos < len(self.sc.text) and self.sc.text[self.sc.pos] == ",":
                    self.sc.pos += 1
                return out


def _set(data: dict[str, Any], key: str, value: Any) -> None:
    if key:
        data[key] = value


def _set_index(lst: list[Any], index: int, value: Any) -> list[Any]:
    if index < 0:
        raise StrvalsError(f"negative {index} index not allowed")
    if index > MAX_INDEX:
        raise StrvalsError(
            f"index of {index} is greater than maximum supported index of {MAX_INDEX}"
        )
    if len(lst) <= index:
        # Go: make a new slice and copy (no aliasing with the old one from here on).
        lst = [*lst, *([None] * (index + 1 - len(lst)))]
    lst[index] = value
    return lst
