"""Slack mrkdwn <-> Matrix ``org.matrix.custom.html``: pure functions, no I/O.

This module is the converters' front door (the connector imports from here); the code lives in
:mod:`.names` (what a text names, :class:`NameTable`), :mod:`.emoji_codes` (shortcodes <->
unicode), :mod:`.mrkdwn_to_html` (Slack -> Matrix) and :mod:`.html_to_mrkdwn` (Matrix -> Slack).

Slack -> Matrix (:func:`mrkdwn_to_matrix`); the connector first resolves the ids a text names
(:func:`mentioned_ids`) and hands the answers in as a :class:`SlackNames`:

==============================  =====================================  ==========================
Slack text                      Matrix HTML                            plain body
==============================  =====================================  ==========================
``&lt; &gt; &amp;``             ``&lt; &gt; &amp;`` (escaped again)    ``< > &``
``<@U1>`` / ``<@U1|name>``      pill ``<a href="https://matrix.to/#/   display name
                                @ghost:hs">Name</a>``; no mxid:
                                ``@name``
``<#C1>`` / ``<#C1|name>``      room pill to the portal (``#name``);   ``#name``
                                no room: ``#name``
``<!here>`` ``<!channel>``      ``@room`` as text (Matrix has one      same (the connector decides
``<!everyone>``                 word for all three; no pill)           about ``m.mentions.room``)
``<!subteam^S1|@team>``         ``@team`` as text (no Matrix           ``@team``
``<!subteam^S1>``               counterpart); ``@S1`` without a label
``<!date^ts^fmt|fallback>``     the fallback (else the UTC time)       same
``<url>`` ``<url|text>``        ``<a href>`` for http(s) and mailto    ``text (url)``, or ``url``
                                only; any other scheme (``javascript:``
                                ``slack:``): ``text (url)`` as text
``<anything else>``             the literal ``<anything else>``        same
``*b*`` ``_i_`` ``~s~``         ``<strong>`` ``<em>`` ``<del>``        the text as written
`` `c` ``                       ``<code>`` (nothing formatted inside)  as written
```` ```c``` ````               ``<pre><code>`` (nothing inside)       as written
``&gt; q`` lines; ``&gt;&gt;&gt;``  one ``<blockquote>`` per run;      as written
                                ``>>>``: the rest of the message
``•``/``◦``/``▪``/``-`` lines   ``<ul><li>`` (4 spaces: one level)     as written
``1.``/``1)`` lines             ``<ol><li>`` (``start`` if not 1)      as written
``:smile:`` ``:+1::skin-tone-3:``  unicode: Slack's names, then the     unicode
                                ``emoji`` package's aliases and names
``:flag-de:`` ``:man-woman-boy:``   built from the name                unicode
``:custom:`` / unknown          left as ``:custom:``                   same
newline                         ``<br>``                               newline
==============================  =====================================  ==========================

Formatting markers follow Slack: an opening ``*``/``_``/``~`` follows a start, space or
punctuation and precedes a non-space; a closing one the reverse; a marker touching the same
character (``**``, ``__init__``) is literal, so is one inside a word (``2*3*4``, ``snake_case``); no
marker spans a line; markers are paired with a stack (linear time). Inside code, mentions and
links become their text, nothing else is parsed. All text reaching the HTML passes through
:func:`html.escape`: no markup from Slack reaches Matrix. ``formatted_body`` is None when
nothing needs HTML.

Matrix -> Slack (:func:`matrix_to_mrkdwn`, in :mod:`.html_to_mrkdwn`):
``matrix_to_mrkdwn(body, html, names, may_mention_room=...)`` reads ``html`` when given (the
reply fallback already stripped by the runtime; ``<mx-reply>`` is dropped anyway), else escapes
``body``; ``names`` is a :class:`MatrixNames` (:class:`NameTable` is both lookups).

======================================  ======================================================
Matrix                                  Slack text
======================================  ======================================================
``& < >`` in any text                   ``&amp; &lt; &gt;`` (so ``<!channel>`` or ``<@U1>``
                                        typed on Matrix stay text)
user pill (matrix.to or ``matrix:u/``)  ``<@U1>`` when it maps to a Slack user, else its name
room pill                               ``<#C1>`` when it maps to a Slack channel, else its text
``@room``                               ``<!channel>`` (or ``<!here>``) only when
                                        ``may_mention_room``, else left as ``@room`` (no Slack
                                        meaning); ``@channel``/``@here`` likewise become
                                        ``<!channel>``/``<!here>``, else (and ``@everyone``
                                        always, code always, any left over such as ``a@here``)
                                        get a word joiner: ``@\\u2060channel``
bold mid-word (``a<b>b</b>c``)          ``abc``: Slack formats only at word boundaries, so a
                                        marker pair it would show as text is left out
literal ``* _ ~ ``` in Matrix text       as typed where Slack would not format them (``2 * 3``,
                                        ``snake_case``, a lone backtick); where it would
                                        (``*not bold*``) a look-alike: ``∗ ＿ ∼ ˋ`` (Slack has
                                        no escape; see :mod:`.slack_line`)
spoiler (``span data-mx-spoiler``)      ``[spoiler: text]``, ``[spoiler (reason): text]``:
                                        Slack cannot hide text, so the text is shown, announced
``strong/b`` ``em/i`` ``del/s``         ``*b*`` ``_i_`` ``~s~`` (spaces moved outside markers)
``code``                                `` `c` `` (a backtick inside becomes ``ˋ``)
``pre``                                 ```` ``` ```` block on its own lines
``blockquote``                          ``> `` lines
``ul``/``ol``/``li``                    ``• ``/``◦ ``, ``1. ``; four spaces per level
``a href`` (http(s), mailto)            ``<url|text>``, or ``<url>`` when the text is the url
``a href`` other schemes                the text only
``br`` ``p`` ``div`` ``h1-6`` ``tr``    newlines (a blank line after ``p``, ``pre``, ``h1-6``)
``mx-reply``, ``script``, ``style``     dropped with their content
any other tag                           its text
======================================  ======================================================

Unicode emoji are sent to Slack as they are (Slack renders them); :func:`emoji_name` gives the
Slack name of one for ``reactions.add``, :func:`emoji_unicode` the reverse.
"""

from __future__ import annotations

from .emoji_codes import emoji_name, emoji_unicode
from .html_to_mrkdwn import matrix_to_mrkdwn
from .mrkdwn_to_html import mrkdwn_to_matrix
from .names import (
    MatrixNames,
    Mentioned,
    NameTable,
    SlackChannel,
    SlackNames,
    SlackUser,
    mentioned_ids,
    pill_href,
)

__all__ = [
    "MatrixNames",
    "Mentioned",
    "NameTable",
    "SlackChannel",
    "SlackNames",
    "SlackUser",
    "emoji_name",
    "emoji_unicode",
    "matrix_to_mrkdwn",
    "mentioned_ids",
    "mrkdwn_to_matrix",
    "pill_href",
]
