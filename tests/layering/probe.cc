// Compiled by tests/layering/CMakeLists.txt with one runtime layer's include
// path: DISPATCH_PROBE_OWN, a header of that layer, must resolve (and bring
// the layers below it); DISPATCH_PROBE_ABOVE, a header of a layer above it,
// must not: "No such file or directory" is the passing outcome.
#include DISPATCH_PROBE_OWN
#ifdef DISPATCH_PROBE_ABOVE
#include DISPATCH_PROBE_ABOVE
#endif

int main() { return 0; }
