// An annotated header outside the project that generates it and outside
// every include directory of the target: nothing could #include it.
#pragma once
[[dispatch::function]] int y(int a);
