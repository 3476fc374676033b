#include "binding_core.h"
namespace terrafuse::bindings {
void InitEncode(nb::module_& m) {}
}  // namespace terrafuse::bindings
