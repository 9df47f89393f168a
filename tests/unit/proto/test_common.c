/* test_common.c - the protobuf pipeline: proto/common.proto is compiled at build time and its
 * messages survive a round trip through the wire encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/common.pb-c.h"

static void position_round_trip(void **state)
{
    Finalverse__Common__V1__Vec3 at = FINALVERSE__COMMON__V1__VEC3__INIT;
    Finalverse__Common__V1__Position pos = FINALVERSE__COMMON__V1__POSITION__INIT;
    at.x = 100;
    at.y = 50;
    at.z = 200;
    pos.region = "terra-nova";
    pos.at = &at;
    pos.yaw = 1.5f;

    uint8_t wire[128];
    size_t len = finalverse__common__v1__position__get_packed_size(&pos);
    assert_true(len > 0 && len <= sizeof(wire));
    assert_int_equal(finalverse__common__v1__position__pack(&pos, wire), len);

    Finalverse__Common__V1__Position *back =
        finalverse__common__v1__position__unpack(NULL, len, wire);
    assert_non_null(back);
    assert_string_equal(back->region, "terra-nova");
    assert_non_null(back->at);
    assert_true(back->at->x == 100 && back->at->y == 50 && back->at->z == 200);
    assert_true(back->yaw == 1.5f);
    finalverse__common__v1__position__free_unpacked(back, NULL);
}

static void truncated_input_is_refused(void **state)
{
    Finalverse__Common__V1__Error e = FINALVERSE__COMMON__V1__ERROR__INIT;
    e.code = "not_found";
    e.message = "no region 'x'";
    uint8_t wire[64];
    size_t len = finalverse__common__v1__error__pack(&e, wire);
    for (size_t cut = 1; cut < len; cut++) {
        Finalverse__Common__V1__Error *back =
            finalverse__common__v1__error__unpack(NULL, cut, wire);
        /* a cut inside a length-delimited field cannot decode */
        if (back)
            finalverse__common__v1__error__free_unpacked(back, NULL);
    }
    Finalverse__Common__V1__Error *back = finalverse__common__v1__error__unpack(NULL, 3, wire);
    assert_null(back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(position_round_trip),
        cmocka_unit_test(truncated_input_is_refused),
    };
    return cmocka_run_group_tests_name("proto/common", tests, NULL, NULL);
}
