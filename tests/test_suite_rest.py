"""scripts/suite_rest.py: node ids <-> pytest's JUnit keys, and the tests a cut run did not reach."""
from scripts import suite_rest


def test_key_of_module_class_and_params():
    assert suite_rest.key_of("tests/test_a.py::test_b[x-1]") == ("tests.test_a", "test_b[x-1]")
    assert suite_rest.key_of("tests/test_a.py::TestC::test_d") == ("tests.test_a.TestC", "test_d")


def test_rest_is_collected_minus_junit(tmp_path):
    xml = tmp_path / "run.xml"
    xml.write_text('<testsuites><testsuite name="pytest">'
                   '<testcase classname="tests.test_a" name="test_b[1]" time="0.1"/>'
                   '<testcase classname="tests.test_a.TestC" name="test_d" time="0.1"><skipped/></testcase>'
                   '</testsuite></testsuites>')
    ids = ["tests/test_a.py::test_b[1]", "tests/test_a.py::test_b[2]", "tests/test_a.py::TestC::test_d",
           "tests/test_e.py::test_f"]
    assert suite_rest.rest(ids, suite_rest.junit_keys([xml])) == ["tests/test_a.py::test_b[2]",
                                                                   "tests/test_e.py::test_f"]


def test_collected_lists_this_module():
    ids = suite_rest.collected("not gpu", ["tests/test_suite_rest.py"])
    assert "tests/test_suite_rest.py::test_key_of_module_class_and_params" in ids and len(ids) == 4


def test_main_splits_pytest_args_at_double_dash(tmp_path, capsys):
    xml = tmp_path / "run.xml"
    xml.write_text('<testsuites><testsuite name="pytest">'
                   '<testcase classname="tests.test_suite_rest" name="test_key_of_module_class_and_params"/>'
                   '</testsuite></testsuites>')
    assert suite_rest.main([str(xml), "--marker", "not gpu", "--", "tests/test_suite_rest.py"]) == 0
    left = capsys.readouterr().out.split()
    assert "tests/test_suite_rest.py::test_rest_is_collected_minus_junit" in left
    assert "tests/test_suite_rest.py::test_key_of_module_class_and_params" not in left
