// Compiles nothing: the owner of the test executables' shared precompiled header.
