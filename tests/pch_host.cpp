// The owner of the test executables' shared precompiled header; it runs nothing.
int main() { return 0; }
