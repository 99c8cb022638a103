/* The hot loop of every partitioned edge, in C: OutboundEdge._split_memoized.
 *
 * jetmq/member/engine/routing.py holds the same loop in Python, used when this
 * module could not be built; tests/unit/test_routing_speedups.py checks that both
 * route every kind of key alike. The int path must stay equal to
 * jetmq.core.partition.partition_of: ((h ^ (h >> 32)) * 0x9E3779B1 & 0xFFFFFFFF) % 271
 * with h = hash(key), Python's unsalted numeric hash. Other keys are looked up in
 * the edge's memo, then handed to partition_of (and remembered while the memo has
 * room, unless unhashable), exactly as the Python loop does. A route entry equal to
 * target_count marks a partition that no target handles.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define PARTITION_COUNT 271
#define GOLDEN32 0x9E3779B1u

/* Python's h >> 32 on a signed value is a floor division; C leaves the shift of a
 * negative value to the compiler, so spell it out. */
static inline uint64_t
fold(Py_hash_t h)
{
    int64_t high = h >= 0 ? (int64_t)h >> 32 : ~((~(int64_t)h) >> 32);
    return (uint64_t)h ^ (uint64_t)high;
}

static inline Py_ssize_t
int_partition(Py_hash_t h)
{
    return (Py_ssize_t)(((uint32_t)fold(h) * GOLDEN32) % PARTITION_COUNT);
}

/* split(batch, key_fn, route, target_count, memo, memo_limit, partition_of) -> list of lists;
 * key_fn None is the identity (keys.specialize() returns it for `lambda item: item`) */
static PyObject *
split(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7) {
        PyErr_Format(PyExc_TypeError, "split() takes 7 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *batch = args[0], *key_fn = args[1], *route = args[2], *memo = args[4], *partition_of = args[6];
    if (!PyList_CheckExact(batch) || !PyList_CheckExact(route) || !PyDict_CheckExact(memo)) {
        PyErr_SetString(PyExc_TypeError, "split() needs a list batch, a list route and a dict memo");
        return NULL;
    }
    Py_ssize_t target_count = PyLong_AsSsize_t(args[3]);
    if (target_count == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t memo_limit = PyLong_AsSsize_t(args[5]);
    if (memo_limit == -1 && PyErr_Occurred())
        return NULL;
    if (PyList_GET_SIZE(route) != PARTITION_COUNT) {
        PyErr_Format(PyExc_ValueError, "the route table has %zd entries, not %d",
                     PyList_GET_SIZE(route), PARTITION_COUNT);
        return NULL;
    }
    Py_ssize_t table[PARTITION_COUNT];
    for (int p = 0; p < PARTITION_COUNT; p++) {
        Py_ssize_t target = PyLong_AsSsize_t(PyList_GET_ITEM(route, p));
        if (target == -1 && PyErr_Occurred())
            return NULL;
        /* target_count: a partition no target here handles (a receiver's table lists
         * only the partitions its member owns); an item of one is an error, below */
        if (target < 0 || target > target_count) {
            PyErr_Format(PyExc_ValueError, "partition %d routes to target %zd of %zd", p, target, target_count);
            return NULL;
        }
        table[p] = target;
    }
    PyObject *outputs = PyList_New(target_count);
    if (outputs == NULL)
        return NULL;
    for (Py_ssize_t t = 0; t < target_count; t++) {
        PyObject *output = PyList_New(0);
        if (output == NULL)
            goto error;
        PyList_SET_ITEM(outputs, t, output);
    }
    /* the size is read again each turn: a key function may (wrongly) change the batch */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(batch); i++) {
        PyObject *item = PyList_GET_ITEM(batch, i);
        Py_INCREF(item);
        PyObject *key;
        if (key_fn == Py_None) {  /* the identity: the item is its own key */
            Py_INCREF(item);
            key = item;
        } else if ((key = PyObject_CallOneArg(key_fn, item)) == NULL) {
            Py_DECREF(item);
            goto error;
        }
        Py_ssize_t target, partition = -1;
        if (PyLong_CheckExact(key)) {
            partition = int_partition(PyObject_Hash(key));  /* an int's hash cannot fail */
            target = table[partition];
        } else {
            PyObject *known = PyDict_GetItemWithError(memo, key);  /* borrowed */
            if (known != NULL) {
                target = PyLong_AsSsize_t(known);
                if (target == -1 && PyErr_Occurred())
                    target = -2;
                else if (target < 0 || target >= target_count) {
                    PyErr_Format(PyExc_ValueError, "the memo routes a key to target %zd of %zd", target, target_count);
                    target = -2;
                }
            } else if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_TypeError)) {
                target = -2;
            } else {
                /* not remembered yet, or unhashable (TypeError: partition_of hashes its pickle) */
                int hashable = !PyErr_Occurred();
                PyErr_Clear();
                PyObject *found = PyObject_CallOneArg(partition_of, key);
                partition = found == NULL ? -1 : PyLong_AsSsize_t(found);
                Py_XDECREF(found);
                if (partition < 0 || partition >= PARTITION_COUNT) {
                    if (!PyErr_Occurred())
                        PyErr_Format(PyExc_ValueError, "partition_of returned %zd", partition);
                    target = -2;
                } else {
                    target = table[partition];
                    if (hashable && target < target_count && PyDict_GET_SIZE(memo) < memo_limit) {
                        PyObject *value = PyLong_FromSsize_t(target);  /* not the route's: a key_fn may change it */
                        if (value == NULL || PyDict_SetItem(memo, key, value) < 0)
                            target = -2;
                        Py_XDECREF(value);
                    }
                }
            }
        }
        if (target == target_count) {  /* the key's partition has no target here */
            PyErr_Format(PyExc_ValueError, "key %R is in partition %zd, which no target of this edge handles",
                         key, partition);
            target = -2;
        }
        Py_DECREF(key);
        if (target < 0 || PyList_Append(PyList_GET_ITEM(outputs, target), item) < 0) {  /* an error is set */
            Py_DECREF(item);
            goto error;
        }
        Py_DECREF(item);
    }
    return outputs;
error:
    Py_DECREF(outputs);
    return NULL;
}

static PyMethodDef methods[] = {
    {"split", (PyCFunction)(void (*)(void))split, METH_FASTCALL,
     "split(batch, key_fn, route, target_count, memo, memo_limit, partition_of)\n--\n\n"
     "The items of batch, by target: route[partition of key_fn(item)] (key_fn None: the item)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "jetmq.member.engine._routing",
    "C speedup of the partitioned edge's routing loop (see routing.py).", 0, methods,
};

PyMODINIT_FUNC
PyInit__routing(void)
{
    return PyModule_Create(&module);
}
