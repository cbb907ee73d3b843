"""The expat-free reader of plain XML error documents builds exactly expat's tree, or declines.

`_simple_xml` must never accept a document expat refuses, and whatever it accepts must be the tree expat
+ TreeBuilder build (tags with namespaces, attributes, text, tails). Checked on AWS's own error shapes and
on generated documents and mutations of them (hypothesis).
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, TreeBuilder, XMLParser

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from proxy.core.errors.extract import _simple_xml


def expat(body: bytes) -> Element | None:
    parser = XMLParser(target=TreeBuilder(), encoding="utf-8")
    try:
        parser.feed(body)
        root: Element = parser.close()
    except Exception:
        return None
    return root


def shape(node: Element) -> tuple[object, ...]:
    return (node.tag, node.attrib, node.text, node.tail, [shape(child) for child in node])


def assert_agrees(body: bytes) -> bool:
    """Whether the fast reader took the document; when it did, the tree is expat's."""
    simple = _simple_xml(body)
    if simple is None:
        return False
    expected = expat(body)
    assert expected is not None, f"accepted what expat refuses: {body!r}"
    assert shape(simple) == shape(expected), body
    return True


AWS_DOCUMENTS = [
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does '
    b"not exist.</Message><Key>a/b</Key><RequestId>4442587FB7D0A2F9</RequestId><HostId>h</HostId></Error>",
    b'<ErrorResponse xmlns="http://importexport.amazonaws.com/"><Error><Type>Sender</Type>'
    b"<Code>InvalidJobIdException</Code><Message>m</Message></Error><RequestId>r</RequestId></ErrorResponse>",
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>AuthFailure</Code>'
    b"<Message>AWS was not able to validate the provided access credentials</Message></Error></Errors>"
    b"<RequestID>b2c9f8a2-3d4e-4f5a-8b6c-7d8e9f0a1b2c</RequestID></Response>",
    b'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">\n  <Error>\n    <Type>Sender</Type>\n'
    b"    <Code>NoSuchEntity</Code>\n    <Message>The user with name x cannot be found.</Message>\n"
    b"  </Error>\n  <RequestId>r</RequestId>\n</ErrorResponse>\n",
    b"<Error><Code>AccessDenied</Code><Message/><Empty></Empty></Error>",
    b"<Error><Code>Caf\xc3\xa9 \xe2\x98\x83 > ' \"</Code></Error>",
]


@pytest.mark.parametrize("body", AWS_DOCUMENTS)
def test_aws_error_documents_are_read_without_expat_and_as_expat_reads_them(body: bytes) -> None:
    assert assert_agrees(body)


DECLINED = [
    b"",
    b"   ",
    b"<Error><Code>A&amp;B</Code></Error>",  # references: expat's
    b"<Error><Code>A</Code></Error>\r\n",  # CR: expat normalises line ends
    b"<Error><!-- c --><Code>A</Code></Error>",
    b"<Error><![CDATA[x]]></Error>",
    b'<?xml version="1.0" encoding="ISO-8859-1"?><Error/>',
    b' <?xml version="1.0"?><Error/>',  # the declaration is not first: malformed
    b'<Error a="1"/>',
    b"<p:Error xmlns:p='u'/>",
    b"<Error><Code>A</Error>",
    b"<Error></Error><Error></Error>",
    b"<Error/>junk",
    b"<Error>a < b</Error>",
    b"<Error>\x00</Error>",
    b"<Error>\xff</Error>",
    b"<Error>x]]>y</Error>",
    b'<Error xmlns="http://www.w3.org/2000/xmlns/"/>',
    b"\xef\xbb\xbf<Error/>",
    b'<!DOCTYPE l [<!ENTITY a "x">]><Error>&a;</Error>',
]


@pytest.mark.parametrize("body", DECLINED)
def test_documents_outside_the_plain_subset_go_to_expat(body: bytes) -> None:
    assert _simple_xml(body) is None


_NAMES = st.sampled_from(["Error", "Code", "Message", "a", "_b", "x.y-z", "RequestId", "E1"])
_TEXT = st.text(alphabet="ab \t\n>'\"]/=?!-é☃", max_size=8) | st.lists(
    st.sampled_from([*"ab \t\n<>&;'\"]/=?!-é☃", "\r", "\x00", "\x0c", "\ufffe", "]]>", "&amp;"]), max_size=8
).map("".join)
_NAMESPACE = st.sampled_from(
    ["", "u", "http://s3.amazonaws.com/doc/2006-03-01/", "a b", "http://www.w3.org/XML/1998/namespace"]
)


@st.composite
def _element(draw: st.DrawFn, depth: int = 0) -> str:
    name = draw(_NAMES)
    space = draw(st.sampled_from(["", " ", "\n", "  \t"]))
    declaration = ""
    if draw(st.booleans()):
        quote = draw(st.sampled_from(['"', "'"]))
        declaration = f" xmlns{draw(st.sampled_from(['=', ' = ']))}{quote}{draw(_NAMESPACE)}{quote}"
    if depth >= 3 or draw(st.integers(0, 4)) == 0:
        return f"<{name}{declaration}{space}/>"
    children = draw(st.lists(st.one_of(_TEXT, _element(depth + 1)), max_size=4))
    return f"<{name}{declaration}{space}>{''.join(children)}</{name}{space}>"


_PROLOG = st.sampled_from(
    ["", '<?xml version="1.0" encoding="UTF-8"?>', '<?xml version="1.0"?>\n', " ", "\n\n", "x"]
)


@settings(max_examples=400)
@given(_PROLOG, _element(), st.sampled_from(["", "\n", " x", "<a/>", "</a>"]))
@example('<?xml version="1.0"?>\n', '<a xmlns="u"><b xmlns="">t</b> <c/></a>', "\n")
def test_generated_documents_agree_with_expat(prolog: str, element: str, epilog: str) -> None:
    assert_agrees((prolog + element + epilog).encode("utf-8"))


@settings(max_examples=400)
@given(_element(), st.data())
def test_mutated_documents_agree_with_expat(element: str, data: st.DataObject) -> None:
    body = bytearray(element.encode("utf-8"))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(body)))
        if data.draw(st.booleans()) and at < len(body):
            del body[at]
        else:
            body[at:at] = data.draw(st.sampled_from([b"<", b">", b"/", b"&", b"a", b" ", b'"', b"\xc3"]))
    assert_agrees(bytes(body))
