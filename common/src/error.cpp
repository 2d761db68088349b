#include "ane/error.hpp"
