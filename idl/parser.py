"""Parse `.idl` text into a :class:`~idl.syntax.Document`, or a syntax diagnostic.

The grammar lives in ``grammar.lark`` (lark, LALR(1), with positions). Lark's exceptions are
translated here into diagnostics that read like the checker's ("expected ';' or '}' after 'x',
found 'foo'"); nothing else escapes :func:`parse`.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import importlib.resources
import re
from typing import Any, NoReturn

import lark
from lark import Token, Transformer, v_args

from idl import syntax as s
from idl.diagnostics import Diagnostic

#: Doc-comment tokens seen by the lexer during the current parse.
_DOC_TOKENS: contextvars.ContextVar[list[Token]] = contextvars.ContextVar("doc_tokens")

#: How terminals that are not literal strings are described in syntax errors.
_TERMINAL_WORDS = {
    "NAME": "a name",
    "INT": "a number",
    "FLOAT": "a number",
    "STRING": "a string",
    "$END": "end of file",
}
#: Above this many alternatives a syntax error says "unexpected X" rather than listing them.
_MAX_LISTED = 6

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}
_ESCAPE_RE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)


@dataclasses.dataclass(frozen=True)
class ParseResult:
    """A document, or the syntax diagnostic that stopped the parse."""

    document: s.Document | None
    diagnostics: tuple[Diagnostic, ...]


class _SyntaxProblem(Exception):
    """Raised inside the tree transformer; becomes a diagnostic."""

    def __init__(self, pos: s.Pos, message: str) -> None:
        super().__init__(message)
        self.pos = pos
        self.message = message


def _collect_doc(token: Token) -> Token:
    _DOC_TOKENS.get().append(token)
    return token


@functools.cache
def _lark() -> lark.Lark:
    grammar = importlib.resources.files("idl").joinpath("grammar.lark").read_text("utf-8")
    return lark.Lark(
        grammar,
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=True,
        lexer_callbacks={"DOC_COMMENT": _collect_doc, "DOC_BLOCK": _collect_doc},
    )


def parse(text: str, path: str) -> ParseResult:
    """Parse one file's text; ``path`` is only used in diagnostics."""
    docs: list[Token] = []
    reset = _DOC_TOKENS.set(docs)
    try:
        tree = _lark().parse(text)
        document = _Builder(path, text, docs).transform(tree)
    except lark.exceptions.VisitError as exc:
        problem = exc.orig_exc
        if not isinstance(problem, _SyntaxProblem):
            raise
        return _failed(Diagnostic.at(path, problem.pos, problem.message))
    except lark.exceptions.UnexpectedInput as exc:
        return _failed(_translate(exc, text, path))
    except RecursionError:
        return _failed(Diagnostic(path, 1, 1, "the file is nested too deeply to parse"))
    finally:
        _DOC_TOKENS.reset(reset)
    return ParseResult(document, ())


def _failed(diagnostic: Diagnostic) -> ParseResult:
    return ParseResult(None, (diagnostic,))


# --------------------------------------------------------------------------- syntax errors


def _translate(exc: lark.exceptions.UnexpectedInput, text: str, path: str) -> Diagnostic:
    if isinstance(exc, lark.exceptions.UnexpectedCharacters):
        return Diagnostic(path, exc.line, exc.column, _bad_character(text, exc.pos_in_stream or 0))
    if isinstance(exc, lark.exceptions.UnexpectedToken):
        token = exc.token
        line, column = _token_position(token, text)
        return Diagnostic(path, line, column, _unexpected_token(exc))
    return Diagnostic(path, max(exc.line, 1), max(exc.column, 1), "syntax error")


def _token_position(token: Token, text: str) -> tuple[int, int]:
    if token.type != "$END" or token.line is None:
        return token.line or 1, token.column or 1
    # End of file: point just past the last character.
    lines = text.splitlines() or [""]
    return len(lines), len(lines[-1]) + 1


def _bad_character(text: str, offset: int) -> str:
    rest = text[offset : offset + 2]
    if rest.startswith(('"', "'")):
        return "unterminated string"
    if rest == "/*":
        return "unterminated comment: '/*' without '*/'"
    return f"unexpected character {rest[:1]!r}"


def _describe_terminal(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    terminal = _terminals().get(name)
    if terminal is not None and isinstance(terminal.pattern, lark.lexer.PatternStr):
        return f"'{terminal.pattern.value}'"
    return name.lower()


@functools.cache
def _terminals() -> dict[str, Any]:
    return {t.name: t for t in _lark().terminals}


def _unexpected_token(exc: lark.exceptions.UnexpectedToken) -> str:
    token = exc.token
    found = "end of file" if token.type == "$END" else f"'{token}'"
    stack = _value_stack(exc)
    # LALR states are shared between struct bodies and parameter lists; only the closer of
    # the innermost open bracket is really expected.
    wrong_closers = {f"'{c}'" for c in _CLOSERS.values()} - {f"'{_innermost_closer(stack)}'"}
    words = sorted({_describe_terminal(name) for name in exc.expected} - wrong_closers)
    previous = _previous_token(stack)
    after = f" after '{previous}'" if previous else ""
    if not words or len(words) > _MAX_LISTED:
        return f"unexpected {found}{after}"
    expected = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
    return f"expected {expected}{after}, found {found}"


_CLOSERS = {"(": ")", "{": "}", "[": "]", "<": ">"}


def _value_stack(exc: lark.exceptions.UnexpectedToken) -> list[Any]:
    """What the parser had shifted when it failed (lark keeps it on the exception)."""
    parser = getattr(exc, "interactive_parser", None)
    stack = getattr(getattr(parser, "parser_state", None), "value_stack", None)
    return list(stack) if stack else []


def _innermost_closer(stack: list[Any]) -> str | None:
    """The bracket that closes the innermost construct still open on the stack."""
    depth = 0
    for item in reversed(stack):
        if not isinstance(item, Token):
            continue  # reduced constructs are complete, so their brackets are balanced
        if item in _CLOSERS.values():
            depth += 1
        elif item in _CLOSERS:
            if depth == 0:
                return _CLOSERS[str(item)]
            depth -= 1
    return None


def _previous_token(stack: list[Any]) -> str | None:
    """The text of the last token the parser accepted."""
    item: Any = stack[-1] if stack else None
    while isinstance(item, lark.Tree):
        children = [c for c in item.children if c is not None]
        item = children[-1] if children else None
    return str(item) if isinstance(item, Token) else None


# --------------------------------------------------------------------------- tree to AST


def _pos(token: Token) -> s.Pos:
    return s.Pos(token.line or 1, token.column or 1)


def _meta_pos(meta: Any) -> s.Pos:
    return s.Pos(getattr(meta, "line", 1), getattr(meta, "column", 1))


def _int(token: Token) -> int:
    text = str(token)
    return int(text, 16) if text[:2].lower() == "0x" else int(text, 10)


def _unescape(token: Token) -> str:
    body = str(token)[1:-1]

    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] == "u" and len(code) == 5:
            char = chr(int(code[1:], 16))
            if 0xD800 <= ord(char) <= 0xDFFF:
                _fail(_pos(token), f"invalid escape '\\{code}': a lone surrogate")
            return char
        if code in _ESCAPES:
            return _ESCAPES[code]
        _fail(_pos(token), f"unknown escape sequence '\\{code}' in string")

    return _ESCAPE_RE.sub(replace, body)


def _doc_text(comment: str) -> str:
    """The text of a `///` line or a `/** */` block, without the comment markers."""
    if comment.startswith("///"):
        body = comment[3:]
        return (body[1:] if body.startswith(" ") else body).rstrip()
    lines = comment[3:-2].splitlines()
    cleaned = []
    for line in lines:
        line = line.strip()
        line = line[1:] if line.startswith("*") else line
        cleaned.append(line[1:] if line.startswith(" ") else line)
    return "\n".join(cleaned).strip("\n")


def _fail(pos: s.Pos, message: str) -> NoReturn:
    raise _SyntaxProblem(pos, message)


def _present(items: list[Any]) -> list[Any]:
    return [item for item in items if item is not None]


@v_args(meta=True)
class _Builder(Transformer[Token, s.Document]):
    """Turns lark's tree into the syntax tree; attaches doc comments by line.

    A doc comment (a run of `///` lines, or a Thrift-style `/** ... */` block) documents the
    definition that starts on the line right after it.
    """

    def __init__(self, path: str, text: str, doc_tokens: list[Token]) -> None:
        super().__init__()
        self._path = path
        self._lines = lines = text.splitlines()
        self._docs: dict[int, tuple[int, str]] = {}  # last line -> (first line, text)
        for token in doc_tokens:
            line = token.line or 0
            # Only a doc comment alone on its line documents the next definition.
            if 1 <= line <= len(lines) and not lines[line - 1][: (token.column or 1) - 1].strip():
                end = token.end_line or line
                self._docs[end] = (line, _doc_text(str(token)))

    def _doc(self, meta: Any) -> str:
        line = getattr(meta, "line", 0)
        column = getattr(meta, "column", 1)
        if not 1 <= line <= len(self._lines) or self._lines[line - 1][: column - 1].strip():
            return ""  # only a definition that starts its line can have a doc comment
        line -= 1
        collected: list[str] = []
        while line in self._docs:
            first, text = self._docs[line]
            collected.append(text)
            line = first - 1
        return "\n".join(reversed(collected)).strip("\n")

    # -- file structure ------------------------------------------------------------------

    def start(self, meta: Any, children: list[Any]) -> s.Document:
        includes = tuple(c for c in children if isinstance(c, s.Include))
        definitions = tuple(c for c in _present(children) if not isinstance(c, s.Include))
        return s.Document(self._path, includes, definitions)

    def include(self, meta: Any, children: list[Any]) -> s.Include:
        return s.Include(_pos(children[0]), _unescape(children[0]))

    def namespace(self, meta: Any, children: list[Any]) -> None:
        return None  # Thrift `namespace` lines are accepted and ignored.

    # -- definitions ---------------------------------------------------------------------

    def const(self, meta: Any, children: list[Any]) -> s.Const:
        type_ref, name, value = children
        return s.Const(_pos(name), str(name), type_ref, value, self._doc(meta))

    def typedef(self, meta: Any, children: list[Any]) -> s.Typedef:
        type_ref, name = children
        return s.Typedef(_pos(name), str(name), type_ref, self._doc(meta))

    def enum(self, meta: Any, children: list[Any]) -> s.Enum:
        name, *items = children
        return s.Enum(_pos(name), str(name), tuple(items), self._doc(meta))

    def enum_value(self, meta: Any, children: list[Any]) -> s.EnumItem:
        name, value = children
        return s.EnumItem(_pos(name), str(name), value, self._doc(meta))

    def record(self, meta: Any, children: list[Any]) -> s.Record:
        kind, name, *fields = children
        return s.Record(_pos(name), str(kind), str(name), tuple(fields), self._doc(meta))

    def field(self, meta: Any, children: list[Any]) -> s.Field:
        number, requiredness, type_ref, name, default = children
        return s.Field(
            pos=_pos(name),
            number=_int(number),
            number_pos=_pos(number),
            requiredness=str(requiredness) if requiredness is not None else None,
            type=type_ref,
            name=str(name),
            default=default,
            doc=self._doc(meta),
        )

    def service(self, meta: Any, children: list[Any]) -> s.Service:
        name, version, *methods = children
        version_pos = _pos(version) if version is not None else _pos(name)
        number = _int(version) if version is not None else 1
        return s.Service(_pos(name), str(name), number, version_pos, tuple(methods),
                         self._doc(meta))

    def method(self, meta: Any, children: list[Any]) -> s.Method:
        number, *rest = children
        modifiers: set[str] = set()
        while isinstance(rest[0], Token) and rest[0].type in ("ONEWAY", "IDEMPOTENT"):
            modifiers.add(rest.pop(0).type)
        result, name, *params_and_throws = rest
        throws = params_and_throws.pop()
        return s.Method(
            pos=_pos(name),
            number=_int(number) if number is not None else None,
            number_pos=_pos(number) if number is not None else None,
            oneway="ONEWAY" in modifiers,
            idempotent="IDEMPOTENT" in modifiers,
            result=None if isinstance(result, Token) else result,
            name=str(name),
            params=tuple(params_and_throws),
            throws=throws or (),
            doc=self._doc(meta),
        )

    def modifier(self, meta: Any, children: list[Any]) -> Token:
        token: Token = children[0]
        return token

    def throws(self, meta: Any, children: list[Any]) -> tuple[s.Throw, ...]:
        return tuple(children)

    def throw_item(self, meta: Any, children: list[Any]) -> s.Throw:
        number, type_ref, name = children
        return s.Throw(
            pos=type_ref.pos,
            number=_int(number) if number is not None else None,
            type=type_ref,
            name=str(name) if name is not None else None,
        )

    # -- types ---------------------------------------------------------------------------

    def dotted_name(self, meta: Any, children: list[Any]) -> tuple[str, s.Pos]:
        return ".".join(str(c) for c in children), _pos(children[0])

    def named_type(self, meta: Any, children: list[Any]) -> s.NamedType:
        (name, pos), bound = children
        return s.NamedType(pos, name, _int(bound) if bound is not None else None)

    def list_type(self, meta: Any, children: list[Any]) -> s.ListType:
        elem, bound = children
        return s.ListType(_meta_pos(meta), elem, _int(bound) if bound is not None else None)

    def set_type(self, meta: Any, children: list[Any]) -> s.SetType:
        elem, bound = children
        return s.SetType(_meta_pos(meta), elem, _int(bound) if bound is not None else None)

    def map_type(self, meta: Any, children: list[Any]) -> s.MapType:
        key, value, bound = children
        return s.MapType(_meta_pos(meta), key, value, _int(bound) if bound is not None else None)

    # -- values --------------------------------------------------------------------------

    def signed_int(self, meta: Any, children: list[Any]) -> s.IntValue:
        return s.IntValue(_pos(children[0]), _int(children[0]))

    def negative_int(self, meta: Any, children: list[Any]) -> s.IntValue:
        return s.IntValue(_meta_pos(meta), -_int(children[0]))

    def float_value(self, meta: Any, children: list[Any]) -> s.FloatValue:
        return s.FloatValue(_pos(children[0]), float(children[0]))

    def negative_float(self, meta: Any, children: list[Any]) -> s.FloatValue:
        return s.FloatValue(_meta_pos(meta), -float(children[0]))

    def string_value(self, meta: Any, children: list[Any]) -> s.StringValue:
        return s.StringValue(_pos(children[0]), _unescape(children[0]))

    def true_value(self, meta: Any, children: list[Any]) -> s.BoolValue:
        return s.BoolValue(_meta_pos(meta), True)

    def false_value(self, meta: Any, children: list[Any]) -> s.BoolValue:
        return s.BoolValue(_meta_pos(meta), False)

    def name_value(self, meta: Any, children: list[Any]) -> s.NameValue:
        name, pos = children[0]
        return s.NameValue(pos, name)

    def list_value(self, meta: Any, children: list[Any]) -> s.ListValue:
        return s.ListValue(_meta_pos(meta), tuple(_present(children)))

    def map_value(self, meta: Any, children: list[Any]) -> s.MapValue:
        return s.MapValue(_meta_pos(meta), tuple(_present(children)))

    def pair(self, meta: Any, children: list[Any]) -> tuple[s.Value, s.Value]:
        return children[0], children[1]

