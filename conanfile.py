"""Conan 2 recipe for weft, kept next to the sources.

    conan create . -o "weft/*:sqlite=True"          # package it into the local cache
    # a consumer's conanfile.txt:
    #   [requires]
    #   weft/0.1.0
    #   [options]
    #   weft/*:sqlite=True
    #   [generators]
    #   CMakeDeps
    #   CMakeToolchain

The package is made by weft's own CMake install (the one tests/consumers/run.sh tests); the
CMake files a consumer uses come from Conan's CMakeDeps, with the same names as weft's own
package: find_package(weft CONFIG REQUIRED), targets weft::weft and weft::sqlite.
"""

import os
import re

from conan import ConanFile
from conan.errors import ConanException
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeToolchain, cmake_layout
from conan.tools.files import copy, load, rmdir

required_conan_version = ">=2.0"


class WeftConan(ConanFile):
    name = "weft"
    description = (
        "Go-style channels, select, timers, tasks and actors for C++20, "
        "with an event-sourcing layer (header-only)"
    )
    license = "MIT"
    topics = ("concurrency", "channels", "coroutines", "actors", "event-sourcing", "header-only")
    package_type = "header-library"
    # The settings are needed to run CMake's install in package(); package_id drops them.
    settings = "os", "arch", "compiler", "build_type"
    options = {"sqlite": [True, False]}
    default_options = {"sqlite": False}
    exports_sources = "CMakeLists.txt", "cmake/*", "include/*", "LICENSE"
    no_copy_source = True

    def set_version(self):
        # The version's one home is project(weft VERSION ...) in CMakeLists.txt.
        cmakelists = load(self, os.path.join(self.recipe_folder, "CMakeLists.txt"))
        match = re.search(r"project\(\s*weft\s+VERSION\s+(\d+\.\d+\.\d+)", cmakelists)
        if not match:
            raise ConanException("weft: no project(weft VERSION x.y.z) in CMakeLists.txt")
        self.version = match.group(1)

    def layout(self):
        cmake_layout(self)

    def requirements(self):
        if self.options.sqlite:
            # weft::sqlite's headers include <sqlite3.h>: consumers need it too.
            self.requires("sqlite3/[>=3.35 <4]", transitive_headers=True)

    def validate(self):
        if self.settings.get_safe("compiler.cppstd"):
            check_min_cppstd(self, 20)

    def generate(self):
        tc = CMakeToolchain(self)
        tc.cache_variables["WEFT_BUILD_TESTS"] = False
        tc.cache_variables["WEFT_BUILD_BENCH"] = False
        tc.cache_variables["WEFT_BUILD_EXAMPLES"] = False
        tc.cache_variables["WEFT_INSTALL"] = True
        # Only the headers are packaged (the CMake files weft would install for weft::sqlite
        # are removed below), so SQLite3 need not be found here: keep CMake from looking.
        tc.cache_variables["CMAKE_DISABLE_FIND_PACKAGE_SQLite3"] = True
        tc.generate()

    def build(self):
        pass  # header-only: nothing to compile

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        cmake = CMake(self)
        cmake.configure()
        cmake.install()
        # Conan's generators describe the package (package_info below); weft's own CMake
        # package and .pc files would compete with them.
        rmdir(self, os.path.join(self.package_folder, "lib"))
        rmdir(self, os.path.join(self.package_folder, "share"))

    def package_id(self):
        # Header-only, and the package is the same with and without sqlite: the option only
        # adds a requirement and a component (package_info below, evaluated with the
        # consumer's options), never a file. So one package serves every configuration.
        self.info.clear()

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "weft")
        # CMakeDeps and PkgConfigDeps make one more target / .pc file that links every
        # component; weft::weft and weft.pc are the core component's names (as in weft's own
        # install), so the aggregate gets names of its own.
        self.cpp_info.set_property("cmake_target_name", "weft::weft_all")
        self.cpp_info.set_property("pkg_config_name", "weft-all")
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []

        core = self.cpp_info.components["core"]
        core.set_property("cmake_target_name", "weft::weft")
        core.set_property("pkg_config_name", "weft")
        core.bindirs = []
        core.libdirs = []
        if self.settings.os in ("Linux", "FreeBSD"):
            core.system_libs = ["pthread"]

        if self.options.sqlite:
            sqlite = self.cpp_info.components["sqlite"]
            sqlite.set_property("cmake_target_name", "weft::sqlite")
            sqlite.set_property("pkg_config_name", "weft-sqlite")
            sqlite.bindirs = []
            sqlite.libdirs = []
            sqlite.includedirs = []  # the core component has them
            sqlite.requires = ["core", "sqlite3::sqlite3"]
