/* print_statements.c - prints every prepared statement of the FastCGI
 * workers, one per record: name, a TAB, the SQL, a NUL byte.  The bench
 * (tests/bench/run) compiles it against src/api/statements.c so that its
 * pgbench ceilings run exactly the SQL the workers run, whatever
 * statements.c says at the commit being measured.  Not built by make. */
#include <stdio.h>

#include "api/api.h"

int main(void)
{
    for (size_t i = 0; i < api_nstatements; i++)
        printf("%s\t%s%c", api_statements[i].name, api_statements[i].sql, '\0');
    return 0;
}
