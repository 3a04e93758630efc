{# Fails on every row for which the boolean SQL expression is not true (false or null). #}
{% test expression_is_true(model, expression) %}

select *
from {{ model }}
where not coalesce({{ expression }}, false)

{% endtest %}
