"""python -m autoconfig.probe [--target T] [--json] [--quick] [--cxx CXX]"""
import sys

from .entry import main

sys.exit(main())
