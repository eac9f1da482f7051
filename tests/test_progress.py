"""Progress on stderr: lines off a terminal, tqdm bars on one, nothing when quiet or before the delay."""

import io
import re
import time

from lstm_hw.progress import Progress, follow, stage, steps

LINE = re.compile(r"^\[ *(\d+\.\d) s\] (.*)$")


def lines(stream):
    return [LINE.match(line).groups() for line in stream.getvalue().splitlines()]


def test_lines_off_a_terminal():
    out = io.StringIO()
    p = Progress(stream=out)
    p.stage("generate")
    with p.steps("simulate", 3, "timestep") as done:
        done(1)
        done(3)
    p.close()
    names = [name for _, name in lines(out)]
    assert names[0] == "generate" and names[1] == "simulate: 3 timesteps"
    assert re.fullmatch(r"simulate: 3 of 3 timesteps in \d+\.\d s", names[2]), names


def test_quiet_shows_nothing():
    out = io.StringIO()
    p = Progress(stream=out, quiet=True)
    p.stage("generate")
    with p.steps("simulate", 3) as done:
        done(3)
    assert out.getvalue() == ""


def test_nothing_before_the_delay_and_a_long_stage_shows_late():
    out = io.StringIO()
    p = Progress(stream=out, delay=0.3)
    p.stage("quick")
    p.stage("slow")            # replaces "quick", which never shows
    assert out.getvalue() == ""
    time.sleep(0.6)
    assert [name for _, name in lines(out)] == ["slow"]
    (started, _), = lines(out)
    assert float(started) < 0.3  # stamped with its start, shown when the delay ran out
    p.stage("after")
    p.close()
    assert [name for _, name in lines(out)] == ["slow", "after"]


def test_closed_before_the_delay_shows_nothing():
    out = io.StringIO()
    p = Progress(stream=out, delay=0.2)
    p.stage("quick")
    p.close()
    time.sleep(0.4)
    assert out.getvalue() == ""


def test_bars_on_a_terminal():
    out = io.StringIO()
    p = Progress(stream=out, bars=True)
    with p.steps("fine-tune", 4, "epoch") as done:
        for n in range(1, 5):
            done(n)
    text = out.getvalue()
    assert "\rfine-tune:" in text and "/4 [" in text  # tqdm's bar, drawn with \r
    assert text.rstrip().splitlines()[-1].endswith("fine-tune: 4 of 4 epochs")


def test_helpers_without_progress_do_nothing():
    stage(None, "anything")
    with steps(None, "x", 2) as done:
        done(2)


def test_follow_sees_every_line_appended(tmp_path):
    path, seen = tmp_path / "log", []
    with follow(path, seen.append, interval=0.05):
        time.sleep(0.1)                       # the file need not exist yet
        with open(path, "a") as f:
            f.write("one\ntw")
        time.sleep(0.2)
        with open(path, "a") as f:
            f.write("o\nthree\n")
    assert seen == ["one", "two", "three"]
