#pragma once
// main() of the programs that write test fixtures into the directory named by their one
// argument: usage and exit 2 on a wrong argument count, the message and exit 1 on an error.
#include <cstdio>
#include <exception>
#include <filesystem>

template <class Write>
int fixture_main(int argc, char** argv, const char* directory_role, Write write) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s %s\n", argv[0], directory_role);
    return 2;
  }
  try {
    const std::filesystem::path dir = argv[1];
    std::filesystem::create_directories(dir);
    write(dir);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
