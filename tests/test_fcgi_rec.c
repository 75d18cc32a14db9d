/*
 * test_fcgi_rec - the FastCGI record layer (lib/fcgi_rec.c): records and
 * name-value pairs as lighttpd writes them, truncated and malformed ones.
 */
#include "check.h"
#include "fcgi_rec.h"

#include <string.h>

int main(void)
{
    uint8_t b[300];
    fcgi_header h = {0};

    /* a BEGIN_REQUEST as lighttpd sends it: id 1, responder, no keep-conn */
    static const uint8_t begin[16] = {1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
    long len = fcgi_parse_record(begin, 16, &h);
    check(len == 16 && h.type == FCGI_BEGIN_REQUEST && h.id == 1 && h.clen == 8 && h.plen == 0,
          "begin_request_parsed", "type %d id %u clen %zu", h.type, h.id, h.clen);
    check(fcgi_parse_record(begin, 15, &h) == 0, "truncated_record_needs_more", "not 0");
    check(fcgi_parse_record(begin, 3, &h) == 0, "truncated_header_needs_more", "not 0");
    static const uint8_t v2[8] = {2, 1, 0, 1, 0, 0, 0, 0};
    check(fcgi_parse_record(v2, 8, &h) < 0, "version_2_refused", "accepted");
    check(fcgi_parse_record(v2, 1, &h) < 0, "bad_version_seen_at_once", "waited");

    /* padding counts in the record's length */
    fcgi_put_header(b, FCGI_STDIN, 7, 3);
    b[6] = 5;
    memcpy(b + 8, "abc", 3);
    check(fcgi_parse_record(b, 16, &h) == 16 && h.plen == 5 && h.id == 7, "padding_counted",
          "len wrong");
    check(fcgi_parse_record(b, 15, &h) == 0, "padding_awaited", "not 0");

    /* pairs: a short and a long (4-byte) length, round trip */
    char big[200];
    memset(big, 'x', sizeof big);
    size_t n1 = fcgi_put_pair(b, sizeof b, "REQUEST_METHOD", 14, "GET", 3);
    size_t n2 = fcgi_put_pair(b + n1, sizeof b - n1, "Q", 1, big, sizeof big);
    check(n1 == 2 + 17 && n2 == 1 + 4 + 1 + 200, "pairs_encoded", "%zu %zu", n1, n2);
    const uint8_t *nm, *v;
    size_t nl, vl, used;
    int r = fcgi_next_pair(b, n1 + n2, &nm, &nl, &v, &vl, &used);
    check(r == 1 && nl == 14 && vl == 3 && !memcmp(v, "GET", 3) && used == n1, "first_pair", "r %d",
          r);
    r = fcgi_next_pair(b + n1, n2, &nm, &nl, &v, &vl, &used);
    check(r == 1 && nl == 1 && vl == 200 && used == n2, "long_pair", "r %d vl %zu", r, vl);
    check(fcgi_next_pair(b, 0, &nm, &nl, &v, &vl, &used) == 0, "end_of_pairs", "not 0");
    check(fcgi_next_pair(b + n1, n2 - 1, &nm, &nl, &v, &vl, &used) < 0, "truncated_value",
          "accepted");
    check(fcgi_next_pair(b + n1, 3, &nm, &nl, &v, &vl, &used) < 0, "truncated_length", "accepted");
    /* a length of 2^31-1 claims far more than the record holds */
    static const uint8_t huge[8] = {1, 0xff, 0xff, 0xff, 0xff, 'a', 'b', 'c'};
    check(fcgi_next_pair(huge, 8, &nm, &nl, &v, &vl, &used) < 0, "huge_length_refused", "accepted");
    check(fcgi_put_pair(b, 10, "NAME", 4, big, 100) == 0, "pair_too_big_for_buffer", "written");

    uint8_t end[16];
    fcgi_put_end(end, 0x1234, 0, FCGI_CANT_MPX_CONN);
    check(fcgi_parse_record(end, 16, &h) == 16 && h.type == FCGI_END_REQUEST && h.id == 0x1234 &&
              end[12] == FCGI_CANT_MPX_CONN,
          "end_request_written", "bad record");
    return check_summary();
}
