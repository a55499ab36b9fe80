// The `fulcrum` command: the library call of tools/cli.h.
#include "tools/cli.h"

int main(int argc, char** argv) { return fulcrum::cliMain(argc, argv); }
