"""One convention for image sizes: HEIGHTxWIDTH, one parser, one message for a malformed size."""

from __future__ import annotations

import pytest

from depth_estimation.sizes import format_size, parse_size
from depth_estimation.tools.cli import main


def test_sizes_parse_height_first_and_round_trip() -> None:
    assert parse_size('192x256') == (192, 256)
    assert parse_size('480X640') == (480, 640)
    assert format_size(parse_size('96x128')) == '96x128'
    assert parse_size('384x512', multiple_of=32) == (384, 512)


@pytest.mark.parametrize('text, message', [
    ('256', 'is not HEIGHTxWIDTH'), ('192x256x3', 'is not HEIGHTxWIDTH'),
    ('axb', 'is not HEIGHTxWIDTH'), ('0x256', 'must be positive'), ('-2x4', 'must be positive')])
def test_malformed_sizes_are_refused_with_one_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_size(text)


def test_multiples_are_enforced() -> None:
    with pytest.raises(ValueError, match='positive multiples of 32'):
        parse_size('100x128', multiple_of=32)


@pytest.mark.parametrize('arguments', [
    ['export', '--preset', 'tiny', '--random-weights', '-o', 'unused.onnx', '--input-size'],
    ['benchmark', '--input-size'],
    ['benchmark', '--network-size'],
    ['simulate', '--out', 'unused', '--size'],
    ['simulate', '--out', 'unused', '--render-size']])
def test_every_size_option_gives_the_same_message(arguments: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(arguments + ['640'])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "size '640' is not HEIGHTxWIDTH in pixels, e.g. 480x640" in error
